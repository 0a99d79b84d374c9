"""Offline fitting and measurement code (calibration, crop choice). Imports facecmp only."""
