"""Ray-native research and training pipeline for Korean equities."""
