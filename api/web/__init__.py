"""The staff web inbox (网页端待办): server-rendered pages over the same services as the API."""
