DROP TABLE relayed_events;
