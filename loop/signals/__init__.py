"""Signal ingestion from providers: verification, de-duplication, normalization.

- :mod:`loop.signals.verify` checks a webhook's signature on the raw body bytes.
- :mod:`loop.signals.providers` names each provider's secret, headers and delivery identity.
- :mod:`loop.signals.intake` sets the dedup marker and enqueues the RQ job in one MULTI.
- :mod:`loop.signals.github`, :mod:`~loop.signals.sentry`, :mod:`~loop.signals.posthog` map a
  payload to a :class:`~loop.signals.common.Normalized` signal (run by ``workers.signals``).
- :mod:`loop.store.signals` writes the signal and its triage issue atomically.
"""
