"""The publisher job: simulated or replayed stock ticks, paced and published to Pub/Sub.

Run it as `python -m publisher` or `ticker-publish`. `publisher.feed` and `publisher.pacing` are
pure and reusable: the server's in-process simulated feed uses the feed generators.
"""
