"""Optional surfaces over Queue: DRF views (`rest`), a FastAPI router (`fastapi`)."""
