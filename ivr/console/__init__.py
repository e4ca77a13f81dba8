"""`ivr console`: the supervisor web app over the call store."""
