-- A token minted in another cloud is sent only to the URL that minted it: an operator who
-- points a cloud's name elsewhere (VAGOTH_SERVICES_CLOUDS) does not send the service's tokens
-- there. Null: minted before the URL was recorded (taken as the name's URL now).

ALTER TABLE services.cloud_tokens ADD COLUMN url text;
ALTER TABLE services.revocations ADD COLUMN url text;
