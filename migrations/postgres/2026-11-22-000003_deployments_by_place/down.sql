DROP INDEX deployments_by_place;
