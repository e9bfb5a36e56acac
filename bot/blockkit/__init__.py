"""Slack's text and Block Kit as small pure functions (data in, dict out), shared
by the Slack surface (``bot.commands``) and the reminders (``bot.reminders``)."""
