// A webtorrent peer for the interop tests, driven by tests/interop/engines/webtorrent.py.
//
// webtorrent-cli has no switch for its DHT, trackers, LSD or UPnP/NAT-PMP, so the tests
// drive the webtorrent library (installed with webtorrent-cli by scripts/install-engines.sh)
// with every way of finding peers off: peers come only from the addresses given here.
//
//   node webtorrent_peer.mjs '<json>'
//   json: {engines, mode: "seed"|"download", input, out, port, peers: ["host:port"],
//          secure: 0 (plaintext) | 1 (webtorrent's default: MSE first) | 2 (RC4 only),
//          torrent_out (seed: where to write the .torrent)}
//
// One JSON object per line on stdout: listening, ready, done, error.  It never exits on
// its own after "done" (a seeder goes on seeding): the test kills it by its PID.
import fs from 'node:fs'
import path from 'node:path'
import { pathToFileURL } from 'node:url'

const cfg = JSON.parse(process.argv[2])
const say = (event) => process.stdout.write(JSON.stringify(event) + '\n')
const fail = (err) => {
  say({ event: 'error', message: String(err && err.stack ? err.stack : err) })
  process.exit(2)
}
process.on('uncaughtException', fail)
process.on('unhandledRejection', fail)

const entry = path.join(cfg.engines, 'node_modules', 'webtorrent', 'index.js')
const { default: WebTorrent } = await import(pathToFileURL(entry).href)

const client = new WebTorrent({
  dht: false,
  tracker: false,
  lsd: false,
  utPex: false,
  natUpnp: false,
  natPmp: false,
  utp: false,
  webSeeds: false,
  torrentPort: cfg.port,
  secure: cfg.secure
})
client.on('error', fail)
client.on('listening', () => say({ event: 'listening', port: client.address().port }))

function watch (torrent) {
  torrent.on('error', fail)
  torrent.on('wire', (wire, addr) => say({ event: 'wire', address: addr, type: wire.type }))
  torrent.once('infoHash', () => {
    for (const peer of cfg.peers) torrent.addPeer(peer)
  })
  torrent.once('ready', () => say({
    event: 'ready', info_hash: torrent.infoHash, name: torrent.name, length: torrent.length
  }))
  torrent.once('done', () => say({
    event: 'done', downloaded: torrent.downloaded, uploaded: torrent.uploaded, path: torrent.path
  }))
  setInterval(() => say({
    event: 'progress', progress: torrent.progress, downloaded: torrent.downloaded,
    uploaded: torrent.uploaded, peers: torrent.numPeers
  }), 1000).unref()
}

if (cfg.mode === 'seed') {
  const torrent = client.seed(cfg.input, { announce: [], announceList: [], createdBy: 'webtorrent' }, (t) => {
    fs.writeFileSync(cfg.torrent_out, t.torrentFile)
    say({ event: 'seeding', info_hash: t.infoHash, torrent: cfg.torrent_out })
  })
  watch(torrent)
} else {
  const input = fs.existsSync(cfg.input) ? fs.readFileSync(cfg.input) : cfg.input
  watch(client.add(input, { path: cfg.out, announce: [] }))
}
