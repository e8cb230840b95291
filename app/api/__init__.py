"""The integration API (`/api/v1`): API keys, the event feed, and the writes other systems make
through the same use cases as the screens."""
