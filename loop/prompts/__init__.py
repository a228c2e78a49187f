"""The prompt engine: templates, versions, reviews, selection and Handlebars rendering.

:func:`loop.runtime.build` creates the :class:`~loop.prompts.service.PromptService`
(seeding of the default templates happens on first use).
"""
