"""ticker: real-time stock prices from Pub/Sub to browsers over WebSocket, SSE and long polling."""
