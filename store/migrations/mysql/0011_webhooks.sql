-- Webhooks (MySQL/MariaDB dialect): URLs told about events (a message was created, a
-- conversation resolved, a leave-message left), and the durable log of each delivery. A
-- delivery stays `pending` until the receiver answers 2xx (`delivered`) or the retries run out
-- (`failed`); `next_attempt_at` is also the lease a node takes while it sends, so two nodes
-- never send the same delivery at once. `events` is space-separated with a space at each end.
CREATE TABLE webhooks (
    id         BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    url        TEXT   NOT NULL,
    secret     VARCHAR(255) NOT NULL,
    events     VARCHAR(255) NOT NULL,
    created_at BIGINT NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE webhook_deliveries (
    id              BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    webhook_id      BIGINT NOT NULL,
    event           VARCHAR(64) NOT NULL,
    payload         MEDIUMTEXT NOT NULL,
    state           VARCHAR(16) NOT NULL DEFAULT 'pending',
    attempts        INT    NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_status     INT    NULL,
    last_error      TEXT   NULL,
    created_at      BIGINT NOT NULL,
    CONSTRAINT webhook_deliveries_state CHECK (state IN ('pending', 'delivered', 'failed')),
    CONSTRAINT webhook_deliveries_hook_fk FOREIGN KEY (webhook_id)
        REFERENCES webhooks (id) ON DELETE CASCADE,
    INDEX webhook_deliveries_due (state, next_attempt_at),
    INDEX webhook_deliveries_hook (webhook_id, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
