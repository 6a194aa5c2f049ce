-- An image may boot its VMs' kernel directly (as Nova's kernel_id/ramdisk_id image properties
-- do): `boot` names the images holding the kernel and initrd, by id and name, and the kernel's
-- command line. An image so named is not deleted while an image names it.
ALTER TABLE images ADD COLUMN boot jsonb CHECK (boot IS NULL OR jsonb_typeof(boot) = 'object');
CREATE INDEX images_boot_kernel_idx ON images ((boot -> 'kernel' ->> 'id')) WHERE boot IS NOT NULL;
CREATE INDEX images_boot_initrd_idx ON images ((boot -> 'initrd' ->> 'id')) WHERE boot IS NOT NULL;
