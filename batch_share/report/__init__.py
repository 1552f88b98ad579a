"""The per-row report: CSV, JSON Lines and XLSX, written atomically."""
