"""The Discord front end: the gateway bot, the message path, delivery and slash commands."""
