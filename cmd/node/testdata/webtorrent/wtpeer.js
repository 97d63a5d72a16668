// The WebTorrent side of webtorrent_interop_test.go.
//
//   node wtpeer.js seed  IP NODES DIR NAME   TIMEOUT TRANSPORT  seeds DIR/NAME (a torrent WebTorrent creates)
//   node wtpeer.js fetch IP NODES DIR MAGNET TIMEOUT TRANSPORT  fetches MAGNET into DIR
//
// TRANSPORT is tcp (uTP off) or utp (WebTorrent's uTP, utp-native, on
// beside TCP: it dials IPv4 peers with uTP first).
//
// IP is the one 127.x address every socket of this process uses; NODES is
// "ip:port,ip:port,...", the only DHT nodes it bootstraps from. It prints
// one JSON object a line on stdout ({"event": ..., "ms": since start,
// ...}) and exits 0 after "done" (fetch) or when killed; 1 on an error or
// after TIMEOUT seconds.
import dgram from 'node:dgram'
import fs from 'node:fs'
import { createRequire } from 'node:module'
import net from 'node:net'

const [mode, ip, nodes, dir, arg, timeout, transport] = process.argv.slice(2)
if (transport !== 'tcp' && transport !== 'utp') throw new Error(`transport ${transport}: want tcp or utp`)
const start = Date.now()
const say = (event, o = {}) => process.stdout.write(JSON.stringify({ event, ms: Date.now() - start, ...o }) + '\n')
const fail = (what, err) => {
  say('error', { what, message: String(err && err.stack ? err.stack : err) })
  process.exit(1)
}
process.on('uncaughtException', err => fail('uncaught', err))
process.on('unhandledRejection', err => fail('unhandled', err))
setTimeout(() => fail('timeout', `after ${timeout} s`), Number(timeout) * 1000).unref()

// WebTorrent and its DHT listen and bind on all interfaces and dial from
// whatever address the kernel picks: pin every socket to ip, so that the
// peers see the address it announces from, and no packet of this process
// can leave the machine (the kernel sends nothing from 127.x to another
// host).
const listen = net.Server.prototype.listen
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === 'object' && args[0] !== null) {
    args[0] = { ...args[0], host: ip }
  } else {
    const cb = typeof args[args.length - 1] === 'function' ? args.pop() : undefined
    args = [{ port: Number(args[0]) || 0, host: ip }]
    if (cb) args.push(cb)
  }
  return listen.apply(this, args)
}
// And, should a bug or a lying peer hand it another address, it stops
// with an error instead of trying it.
const loopbackOnly = (what, host) => {
  if (!(net.isIPv4(host) && host.startsWith('127.'))) fail(what, `destination ${host} is not on 127.0.0.0/8`)
}
const connect = net.connect
net.connect = net.createConnection = function (opts, ...rest) {
  if (typeof opts !== 'object') fail('net.connect', 'connect without an options object')
  loopbackOnly('net.connect', opts.host)
  return connect.call(this, { ...opts, localAddress: ip }, ...rest)
}
const send = dgram.Socket.prototype.send
dgram.Socket.prototype.send = function (...args) {
  // send(msg[, offset, length], port[, address][, callback])
  const host = args.find((a, i) => i > 0 && typeof a === 'string')
  loopbackOnly('dgram send', host)
  return send.apply(this, args)
}
const bind = dgram.Socket.prototype.bind
dgram.Socket.prototype.bind = function (...args) {
  if (typeof args[0] === 'object' && args[0] !== null) {
    args[0] = { ...args[0], address: ip }
  } else {
    const cb = typeof args[args.length - 1] === 'function' ? args.pop() : undefined
    args = [{ port: Number(args[0]) || 0, address: ip }]
    if (cb) args.push(cb)
  }
  return bind.apply(this, args)
}

// utp-native binds its own UDP sockets (not through dgram): one for the
// listener, one for each outgoing connection.
const require = createRequire(import.meta.url)
const UTP = require('utp-native')
const utpBind = UTP.prototype.bind
UTP.prototype.bind = function (port, _ip, onlistening) {
  if (typeof port === 'function') [port, onlistening] = [0, port]
  if (typeof _ip === 'function') onlistening = _ip
  return utpBind.call(this, port || 0, ip, onlistening)
}
const utpSend = UTP.prototype.send
UTP.prototype.send = function (buf, offset, len, port, host, cb) {
  loopbackOnly('utp send', host)
  return utpSend.call(this, buf, offset, len, port, host, cb)
}
const utpConnect = UTP.prototype.connect
UTP.prototype.connect = function (port, host) {
  loopbackOnly('utp connect', host)
  return utpConnect.call(this, port, host)
}

// Imported only now, so that the modules see the patched net and dgram.
const { default: WebTorrent } = await import('webtorrent')
const pkg = JSON.parse(fs.readFileSync(require.resolve('webtorrent/package.json'), 'utf8'))

const client = new WebTorrent({
  tracker: false,
  lsd: false,
  natUpnp: false,
  natPmp: false,
  utp: transport === 'utp',
  webSeeds: false,
  dht: { bootstrap: nodes.split(',') }
})
client.on('error', err => fail('client', err))
client.on('listening', () => {
  const utp = client._connPool && client._connPool.utpServer
  say('listening', { version: pkg.version, tcp: client.address(), dht: client.dht.address(), utp: utp ? utp.address() : null })
})

function watch (t) {
  t.on('error', err => fail('torrent', err))
  t.on('warning', err => say('warning', { message: String(err && err.message ? err.message : err) }))
  t.on('wire', (wire, addr) => say('wire', { addr, type: wire.type, peer_id: Buffer.from(wire.peerId || '', 'hex').toString('latin1').slice(0, 8) }))
  t.on('dhtAnnounce', () => say('announced', { port: client.torrentPort }))
  t.on('metadata', () => say('metadata', { name: t.name, bytes: t.length, pieces: t.pieces.length }))
  t.on('noPeers', src => say('no_peers', { source: src }))
}

if (mode === 'seed') {
  const t = client.seed(`${dir}/${arg}`, { name: arg, announceList: [], urlList: [] }, t => {
    say('seeding', { info_hash: t.infoHash, magnet: t.magnetURI, port: client.address().port })
  })
  watch(t)
} else {
  const t = client.add(arg, { path: dir, announce: [] })
  watch(t)
  t.on('done', () => {
    say('done', { name: t.name, bytes: t.length, downloaded: t.downloaded, peers: t.numPeers })
    client.destroy(() => process.exit(0))
  })
}
