"""Webhooks: endpoints other systems register, and the delivery of every event of the feed to
them, signed per the Standard Webhooks spec, by a worker process apart from the web servers."""
