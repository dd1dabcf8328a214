"""Files in and out: guarded archives, export, safe `.keras` import."""
