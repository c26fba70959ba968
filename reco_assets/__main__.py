from reco_assets.cli import main

main()
