"""MLflow model flavours of the project's models."""
