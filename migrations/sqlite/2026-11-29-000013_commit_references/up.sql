-- Change requests known to carry a commit without its message saying so: a merged pull
-- request names its merge and head commits. A deployment of such a commit gets the reference
-- at ingest, and deployments recorded before the merge was heard of get it when it is.
CREATE TABLE commit_references (
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    commit_sha TEXT NOT NULL,
    ref_key TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (project_id, commit_sha, ref_key)
);
