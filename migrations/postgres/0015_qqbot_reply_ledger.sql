-- The official QQ Bot API (issue 22) answers a group or a private chat only
-- in reply to a recent incoming message: `msg_id` within 5 minutes (60 in a
-- private chat), at most 5 replies each, every one with its own `msg_seq`.
-- An unprompted ("active") message needs the owner's switch. These tables
-- are that reply ledger; see src/chat/qqbot/ledger.rs.

-- Incoming messages (and the events that allow a reply, such as the bot
-- being added to a group) that a message may still answer.
CREATE TABLE qqbot_anchors (
    chat_id TEXT NOT NULL,
    anchor_id TEXT NOT NULL,
    -- 'msg': a message id, sent as msg_id; 'event': an event id, sent as event_id.
    kind TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    -- Replies sent on it so far; the next one goes out with msg_seq = used + 1.
    used BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (chat_id, anchor_id)
);
CREATE INDEX qqbot_anchors_fresh ON qqbot_anchors(chat_id, received_at);

-- Which anchor and msg_seq each outbox row went out on, written before the
-- request: a resend after a crash uses the same pair, which the platform
-- refuses as a duplicate instead of showing the message twice.
CREATE TABLE qqbot_sends (
    outbox_id BIGINT NOT NULL,
    part BIGINT NOT NULL,
    chat_id TEXT NOT NULL,
    -- '' for an unprompted message (no anchor).
    anchor_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    anchor_at BIGINT NOT NULL,
    msg_seq BIGINT NOT NULL,
    at BIGINT NOT NULL,
    -- 1 once the platform took this part: a resend skips it.
    done BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (outbox_id, part)
);

-- Per chat: the owner's switch for unprompted messages (NULL: not known
-- yet, tried once), and whether every message of the group reaches the bot.
CREATE TABLE qqbot_chats (
    chat_id TEXT PRIMARY KEY,
    active_allowed BIGINT,
    all_messages BIGINT NOT NULL DEFAULT 0,
    changed_at BIGINT NOT NULL
);
