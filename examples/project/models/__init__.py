"""Data models."""
