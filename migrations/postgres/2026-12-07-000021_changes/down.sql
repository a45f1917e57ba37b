DROP INDEX commit_sightings_by_time;
