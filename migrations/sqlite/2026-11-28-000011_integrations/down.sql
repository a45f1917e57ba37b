DROP TABLE integration_deliveries;
DROP TABLE integrations;
