DROP TABLE commit_references;
