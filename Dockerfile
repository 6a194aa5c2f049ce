# syntax=docker/dockerfile:1

# One image for both vagoth processes; docker-compose.yml picks `npm run api` or `npm run worker`.

# --- deps: compile native modules (vagoth's libvirt binding links against libvirt.so) -------
FROM node:20-bookworm AS deps

RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libvirt-dev libvirt-clients python3 build-essential pkg-config \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY package.json package-lock.json ./
# npm ci's postinstall builds the in-tree binding from these sources.
COPY native/ ./native/
# Dev dependencies are kept on purpose: the services run TypeScript directly through tsx.
RUN npm ci --include=dev --no-audit --no-fund

# --- runtime: same Debian release, without the compiler toolchain ---------------------------
FROM node:20-bookworm-slim AS runtime

# libvirt0 for the native binding, virsh for debugging, ssh for qemu+ssh:// host URIs,
# qemu-img to read imported images, genisoimage to build guests' cloud-init seeds.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libvirt0 libvirt-clients openssh-client ca-certificates qemu-utils genisoimage \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY . .
COPY --from=deps /app/native/libvirt/build ./native/libvirt/build

# Runtime state lives outside the source tree so /app can stay read-only for the service user.
ENV NODE_ENV=production \
    VAGOTH_DATA_DIR=/var/lib/vagoth
RUN mkdir -p /var/lib/vagoth && chown node:node /var/lib/vagoth

USER node
EXPOSE 7780
CMD ["npm", "run", "worker"]
