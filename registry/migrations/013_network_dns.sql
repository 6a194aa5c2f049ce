-- The DNS servers a network's guests are told of (their cloud-init network-config), in order.
-- They may lie outside the network; inside it only where no VM can be handed them (the
-- gateway, a reserved range), which registry/networks.ts checks as the network is made.
ALTER TABLE networks ADD COLUMN dns inet[] NOT NULL DEFAULT '{}'
  CHECK (cardinality(dns) <= 4);
