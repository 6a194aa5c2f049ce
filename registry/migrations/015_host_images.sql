-- Each host's copy of an image, in its storage pool: made once, by the first VM of that image
-- the host gets, and shared by every VM of that image there (their root disks are overlays on
-- it). A copy under way is leased (`copier`, `lease_until`): the lease is renewed while the
-- copy runs, and one not renewed in time (its worker died) passes to whoever asks next, who
-- goes on from where the copy was. `copies` counts the copies begun, for an operator to see
-- that an image went to a host once.
CREATE TABLE host_images (
  host_id uuid NOT NULL REFERENCES host_capacity (host_id) ON DELETE CASCADE,
  image_id uuid NOT NULL REFERENCES images (id) ON DELETE RESTRICT,
  pool text NOT NULL,
  volume text NOT NULL,
  status text NOT NULL DEFAULT 'copying' CHECK (status IN ('copying', 'ready')),
  copier text,
  lease_until timestamptz,
  copies integer NOT NULL DEFAULT 0 CHECK (copies >= 0),
  created_at timestamptz NOT NULL DEFAULT now(),
  ready_at timestamptz,
  PRIMARY KEY (host_id, image_id),
  UNIQUE (host_id, pool, volume),
  CHECK (status <> 'ready' OR ready_at IS NOT NULL)
);
CREATE INDEX host_images_image_idx ON host_images (image_id);

-- The VMs built from an image: an image is not deleted while one is recorded.
CREATE INDEX nodes_vm_image_idx ON nodes ((definition -> 'image' ->> 'id')) WHERE type = 'vm';
