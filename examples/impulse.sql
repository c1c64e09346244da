-- A bounded impulse source, counted in 10-second tumbling windows of event time.
CREATE TABLE impulse WITH (
  connector = 'impulse',
  event_rate = '1000',
  message_count = '5000',
  event_time_interval = '10ms'
);

SELECT tumble(INTERVAL '10' SECOND) AS window, count(*) AS n, max(counter) AS last
FROM impulse
GROUP BY window;
