"""Ho Chi Minh museum kiosk: relevance gate, grounded answers and the FastAPI service."""
