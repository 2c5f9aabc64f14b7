"""envelope.aio: the :class:`~envelope.Envelope` API as coroutines, for asyncio services.

>>> import asyncio
>>> from envelope import ClusterSecret, LocalKms
>>> from envelope.aio import AsyncEnvelope
>>> async def main() -> bytes:
...     async with AsyncEnvelope(LocalKms.ephemeral(), ClusterSecret.generate()) as env:
...         blob = await env.encrypt(b"s3cr3t", context={"service": "billing"})
...         return await env.decrypt(blob, context={"service": "billing"})
>>> asyncio.run(main())
b's3cr3t'

KMS requests and crypto run on a bounded thread pool of the AsyncEnvelope's own, never
on the event loop; errors are those of :mod:`envelope.errors`. See docs/async.md.
"""

from envelope.aio._envelope import AsyncEnvelope

__all__ = ["AsyncEnvelope"]
