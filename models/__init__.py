"""Estimators, grouped cross-validation, calibration, explanations and the MLflow model."""
