"""Microsoft Graph / MAPI names the connector writes and reads: the one place for them.

Property ids, the attachment type and the well-known parent folder. Used by the renderer (to
write them), the Graph client (to filter on the dedupe key, to find the folder) and the
emulator (to honour them as Exchange does).
"""

from __future__ import annotations

# PidTagMessageFlags. Bit 0x8 (MSGFLAG_UNSENT) absent = not a draft; 0x1 = read.
MESSAGE_FLAGS = "Integer 0x0E07"
MSGFLAG_READ = 0x1
MSGFLAG_UNSENT = 0x8
ARCHIVED_MESSAGE_FLAGS = MSGFLAG_READ

# PidTagMessageDeliveryTime and PidTagClientSubmitTime: the chat time, UTC.
DELIVERY_TIME = "SystemTime 0x0E06"
SUBMIT_TIME = "SystemTime 0x0039"

# A named string property in our own namespace: the dedupe key of a (chat item | transcript).
PROPERTY_SET = "{6f1c6a8e-4c1b-4f0e-9a57-1c3e5b7d2a10}"
DEDUPE_KEY = f"String {PROPERTY_SET} Name IceChatDedupeKey"

# Host part of every internetMessageId we mint; a reserved TLD, so it never routes.
MESSAGE_ID_DOMAIN = "icechat-archiver.invalid"

# The @odata.type of a file carried inline by a message.
FILE_ATTACHMENT = "#microsoft.graph.fileAttachment"

# The well-known name of the mailbox's top folder: the archive folder is its child.
ROOT_FOLDER = "msgfolderroot"
