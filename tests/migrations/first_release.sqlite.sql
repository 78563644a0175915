-- The schema as create_all made it at commit 93423b7 (the first release), on sqlite:
-- generated from that commit's bot/store.py metadata; never edit it.
CREATE TABLE conversations (
	"key" VARCHAR NOT NULL, 
	state JSON NOT NULL, 
	version INTEGER NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY ("key")
);

CREATE TABLE profiles (
	"key" VARCHAR NOT NULL, 
	profile JSON NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY ("key")
);

CREATE TABLE seen_events (
	event_id VARCHAR NOT NULL, 
	seen_at DATETIME NOT NULL, 
	PRIMARY KEY (event_id)
);

CREATE INDEX ix_seen_events_seen_at ON seen_events (seen_at);

CREATE TABLE tickets (
	number INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, 
	status VARCHAR(16) NOT NULL, 
	requester JSON NOT NULL, 
	conversation_key VARCHAR NOT NULL, 
	bounce JSON NOT NULL, 
	path JSON NOT NULL, 
	note TEXT, 
	dedupe_key VARCHAR, 
	assignee JSON, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	version INTEGER NOT NULL
);

CREATE UNIQUE INDEX uq_tickets_unresolved_dedupe_key ON tickets (dedupe_key) WHERE status != 'resolved';

CREATE TABLE conversation_refs (
	"key" VARCHAR NOT NULL, 
	reference JSON NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY ("key")
);

CREATE TABLE admin_channels (
	platform VARCHAR(16) NOT NULL, 
	channel JSON NOT NULL, 
	registered_by VARCHAR NOT NULL, 
	registered_at DATETIME NOT NULL, 
	PRIMARY KEY (platform)
);

CREATE TABLE ticket_requesters (
	ticket_number INTEGER NOT NULL, 
	user_key VARCHAR NOT NULL, 
	requester JSON NOT NULL, 
	added_at DATETIME NOT NULL, 
	PRIMARY KEY (ticket_number, user_key), 
	FOREIGN KEY(ticket_number) REFERENCES tickets (number)
);

CREATE TABLE ticket_events (
	id INTEGER NOT NULL, 
	ticket_number INTEGER NOT NULL, 
	at DATETIME NOT NULL, 
	actor VARCHAR NOT NULL, 
	kind VARCHAR(32) NOT NULL, 
	detail JSON NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(ticket_number) REFERENCES tickets (number)
);

CREATE INDEX ix_ticket_events_ticket_number ON ticket_events (ticket_number);

CREATE TABLE ticket_cards (
	ticket_number INTEGER NOT NULL, 
	platform VARCHAR(16) NOT NULL, 
	ref JSON NOT NULL, 
	PRIMARY KEY (ticket_number, platform), 
	FOREIGN KEY(ticket_number) REFERENCES tickets (number)
);

CREATE TABLE ticket_jobs (
	id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, 
	ticket_number INTEGER NOT NULL, 
	target VARCHAR(16) NOT NULL, 
	kind VARCHAR(16) NOT NULL, 
	seq INTEGER NOT NULL, 
	payload JSON NOT NULL, 
	created_at DATETIME NOT NULL, 
	attempts INTEGER NOT NULL, 
	next_attempt_at DATETIME NOT NULL, 
	done_at DATETIME, 
	last_error TEXT, 
	CONSTRAINT uq_ticket_jobs_order UNIQUE (ticket_number, target, seq), 
	FOREIGN KEY(ticket_number) REFERENCES tickets (number)
);

CREATE INDEX ix_ticket_jobs_done_at ON ticket_jobs (done_at);

CREATE INDEX ix_ticket_jobs_pending ON ticket_jobs (next_attempt_at) WHERE done_at IS NULL;

CREATE TABLE ticket_reminders (
	ticket_number INTEGER NOT NULL, 
	last_reminded_at DATETIME NOT NULL, 
	PRIMARY KEY (ticket_number), 
	FOREIGN KEY(ticket_number) REFERENCES tickets (number)
);
