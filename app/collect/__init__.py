"""Getting bars: the bar sources (KIS, the embedded simulator, files), parallel collection and the Parquet store."""
