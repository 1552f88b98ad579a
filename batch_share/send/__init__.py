"""Talking to the API: signing, the GraphQL client, pace, retries, the journal and read-back."""
