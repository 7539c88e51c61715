"""HTTP routes: thin handlers delegating to `backend.serving.Serving` (found on app.state.serving)."""
