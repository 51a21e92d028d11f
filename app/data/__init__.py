"""Sources, collection, the Parquet store, features, labels, windows and splits."""
