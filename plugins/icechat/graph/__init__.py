"""Microsoft Graph and Entra ID: settings, tokens, the client, retries, a mailbox's items.

Imports nothing of icechat but :mod:`icechat.exceptions`, so it can be read and tested alone.
"""
