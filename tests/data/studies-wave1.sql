-- A studies.db from wave 1 (before invitations, study states and superseded votes), for the migration test.
CREATE TABLE IF NOT EXISTS studies (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    created TEXT NOT NULL,
    run_dir TEXT NOT NULL,
    gen_params TEXT NOT NULL DEFAULT '{}',
    criteria TEXT NOT NULL DEFAULT '["terminology","logic","format"]',
    password_hash TEXT,
    seed INTEGER NOT NULL,
    repeats INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS questions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    study_id INTEGER NOT NULL REFERENCES studies(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    prompt TEXT NOT NULL,
    domain TEXT,
    reference TEXT,
    UNIQUE (study_id, position)
);
CREATE TABLE IF NOT EXISTS blinding (
    question_id INTEGER PRIMARY KEY REFERENCES questions(id) ON DELETE CASCADE,
    left_is_adapter INTEGER NOT NULL CHECK (left_is_adapter IN (0, 1))
);
CREATE TABLE IF NOT EXISTS answers (
    question_id INTEGER PRIMARY KEY REFERENCES questions(id) ON DELETE CASCADE,
    side_base_text TEXT NOT NULL,
    side_adapter_text TEXT NOT NULL,
    flagged_identity INTEGER NOT NULL DEFAULT 0,
    generated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS presented (
    question_id INTEGER PRIMARY KEY REFERENCES questions(id) ON DELETE CASCADE,
    text_a TEXT NOT NULL,
    text_b TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS raters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    study_id INTEGER NOT NULL REFERENCES studies(id) ON DELETE CASCADE,
    name TEXT NOT NULL COLLATE NOCASE,
    created TEXT NOT NULL,
    UNIQUE (study_id, name)
);
CREATE TABLE IF NOT EXISTS votes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    study_id INTEGER NOT NULL REFERENCES studies(id) ON DELETE CASCADE,
    question_id INTEGER NOT NULL REFERENCES questions(id) ON DELETE CASCADE,
    rater_id INTEGER NOT NULL REFERENCES raters(id) ON DELETE CASCADE,
    choice TEXT NOT NULL CHECK (choice IN ('A', 'B', 'tie', 'both_bad')),
    scores TEXT,
    comment TEXT NOT NULL DEFAULT '',
    created TEXT NOT NULL,
    repeat INTEGER NOT NULL DEFAULT 0,
    UNIQUE (question_id, rater_id, repeat)
);
CREATE TABLE IF NOT EXISTS skips (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    study_id INTEGER NOT NULL,
    rater_id INTEGER NOT NULL,
    question_id INTEGER NOT NULL,
    repeat INTEGER NOT NULL DEFAULT 0,
    UNIQUE (question_id, rater_id, repeat)
);
CREATE INDEX IF NOT EXISTS votes_by_rater ON votes (study_id, rater_id);
CREATE INDEX IF NOT EXISTS questions_by_study ON questions (study_id, position);
INSERT INTO studies VALUES (1, 'old', '2025-01-01T00:00:00+00:00', 'runs/r1', '{}', '["logic"]',
                            'pbkdf2_sha256$1$00$00', 9, 0);
INSERT INTO questions VALUES (1, 1, 1, 'Q1?', 'law', NULL), (2, 1, 2, 'Q2?', 'law', NULL);
INSERT INTO blinding VALUES (1, 1), (2, 0);
INSERT INTO answers VALUES (1, 'generic: Q1?', 'expert: Q1?', 0, '2025-01-01T00:00:00+00:00'),
                           (2, 'generic: Q2?', 'expert: Q2?', 0, '2025-01-01T00:00:00+00:00');
INSERT INTO presented VALUES (1, 'expert: Q1?', 'generic: Q1?'), (2, 'generic: Q2?', 'expert: Q2?');
INSERT INTO raters VALUES (1, 1, 'Ann', '2025-01-01T00:00:00+00:00');
INSERT INTO votes VALUES (7, 1, 1, 1, 'A', '{"A": {"logic": 5}}', 'good', '2025-01-01T00:01:00+00:00', 0);
INSERT INTO votes VALUES (40, 1, 2, 1, 'A', NULL, '', '2025-01-01T00:02:00+00:00', 0);
DELETE FROM votes WHERE id = 40;
