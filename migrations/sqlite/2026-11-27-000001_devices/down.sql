DROP TABLE envelopes;
DROP TABLE one_time_prekeys;
DROP TABLE signed_prekeys;
DROP TABLE devices;
