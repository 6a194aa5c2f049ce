-- The monitor's memory between its runs. Kept apart from host_capacity (and out of the node
-- event log): a poll every N seconds would otherwise log a change per host per poll.
CREATE TABLE host_polls (
  host_id         uuid PRIMARY KEY REFERENCES host_capacity (host_id) ON DELETE CASCADE,
  -- Polls in a row the host has not answered; 0 once it answers again.
  failures        integer NOT NULL DEFAULT 0 CHECK (failures >= 0),
  last_polled_at  timestamptz,
  last_answer_at  timestamptz,
  last_error      text,
  -- The monitor, not an operator, put the host in `down`: only then does an answer bring it
  -- back to `active` on its own. Cleared when the host leaves `down` for any reason.
  down_by_monitor boolean NOT NULL DEFAULT false
);

-- Each run's report (discrepancies by kind, what was applied), newest kept for the API.
CREATE TABLE monitor_reports (
  id          bigserial PRIMARY KEY,
  at          timestamptz NOT NULL DEFAULT now(),
  operation   text,
  report      jsonb NOT NULL
);
CREATE INDEX monitor_reports_at_idx ON monitor_reports (at DESC);

-- A host leaving `down` (an operator's activate or maintenance, or the monitor's own revival)
-- forgets that the monitor put it there, so a later `down` set by an operator is never undone.
CREATE FUNCTION forget_monitor_down() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE host_polls SET down_by_monitor = false WHERE host_id = NEW.host_id AND down_by_monitor;
  RETURN NULL;
END $$;

CREATE TRIGGER host_capacity_left_down AFTER UPDATE OF state ON host_capacity
  FOR EACH ROW WHEN (OLD.state = 'down' AND NEW.state <> 'down')
  EXECUTE FUNCTION forget_monitor_down();
