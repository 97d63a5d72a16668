# fetchbench's libtorrent leecher (embedded in fetchbench, run with Debian's
# python3-libtorrent): fetches a magnet link through the loopback DHT
# alone, prints JSON events on stdout like leech-anacrolix does
# ("metadata", then "complete"), and exits.
#
#   ltleech.py MAGNET DIR IP NODES TIMEOUT [tcp|utp|rc4]
#
# IP is the loopback address to listen on and connect from; NODES is
# "ip:port,ip:port,...", the DHT nodes it bootstraps from. Apart from that,
# libtorrent's defaults, minus whatever could reach beyond loopback: no
# LSD, UPnP, NAT-PMP, IP notifier, public DHT routers (dht_bootstrap_nodes
# is empty) or trackers (the magnet link has none). The last argument
# picks the transport: tcp (the default) is TCP alone, no uTP (neither
# other leecher uses it, nor do the seeders accept it); utp is uTP alone
# (enable_outgoing_tcp and enable_incoming_tcp off); rc4 is TCP alone with
# encryption forced both ways and RC4 the only level. The "complete" event
# says over what each peer that delivered data was connected ("links").
# Errors and a status line every 2 s go to stderr.
import json, sys, time

import libtorrent as lt

start = time.monotonic()


def emit(kind, **fields):
    fields["event"] = kind
    fields["after_ms"] = int((time.monotonic() - start) * 1000)
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def log(*a):
    print("ltleech %.3f" % (time.monotonic() - start), *a, file=sys.stderr, flush=True)


magnet, d, ip, nodes, timeout = sys.argv[1:6]
mode = sys.argv[6] if len(sys.argv) > 6 else "tcp"
deadline = start + float(timeout)

transport = {
    "tcp": {"enable_incoming_utp": False, "enable_outgoing_utp": False},
    "utp": {"enable_incoming_tcp": False, "enable_outgoing_tcp": False,
            "enable_incoming_utp": True, "enable_outgoing_utp": True},
    "rc4": {"enable_incoming_utp": False, "enable_outgoing_utp": False,
            "out_enc_policy": int(lt.enc_policy.forced),
            "in_enc_policy": int(lt.enc_policy.forced),
            "allowed_enc_level": int(lt.enc_level.rc4)},
}[mode]

settings = {
    "listen_interfaces": ip + ":0",
    "outgoing_interfaces": ip,
    "enable_lsd": False,
    "enable_upnp": False,
    "enable_natpmp": False,
    "enable_ip_notifier": False,
    "enable_dht": True,
    "dht_bootstrap_nodes": "",
    # Every DHT node is on 127.0.90.x: libtorrent would otherwise keep one
    # per /24 and refuse them in searches.
    "dht_restrict_routing_ips": False,
    "dht_restrict_search_ips": False,
    "max_retry_port_bind": 0,
    "alert_mask": int(lt.alert_category.error | lt.alert_category.status),
}
settings.update(transport)
ses = lt.session(settings)
for n in nodes.split(","):
    h, p = n.rsplit(":", 1)
    ses.add_dht_node((h, int(p)))

atp = lt.parse_magnet_uri(magnet)
atp.save_path = d
h = ses.add_torrent(atp)

# Bytes received by peer ID, polled: at completion libtorrent has
# already dropped its connections to seeds.
useful = {}
# "transport/encryption" of each peer that delivered data, by peer ID.
links = {}
UTP = 1 << 17  # peer_info::utp_socket


def poll_peers():
    for p in h.get_peer_info():
        if p.total_download > 0:
            k = p.pid.to_bytes().hex()
            useful[k] = max(useful.get(k, 0), p.total_download)
            links[k] = "%s/%s" % ("utp" if int(p.flags) & UTP else "tcp",
                                  "rc4" if p.flags & lt.peer_info.rc4_encrypted else "none")


got_meta = meta_sent = False
last = polled = start
while True:
    now = time.monotonic()
    if now > deadline:
        s = h.status()
        log("timeout: has_metadata", s.has_metadata, "progress %.3f" % s.progress, "peers", s.num_peers)
        sys.exit(1)
    ses.wait_for_alert(min(250, max(1, int((deadline - now) * 1000))))
    done = False
    for a in ses.pop_alerts():
        if isinstance(a, lt.metadata_received_alert):
            got_meta = True
        elif isinstance(a, lt.torrent_finished_alert):
            done = True
        elif a.category() & lt.alert_category.error:
            log(type(a).__name__, a.message())
    if not got_meta or done:
        s = h.status()
        got_meta = got_meta or s.has_metadata
        done = done or s.is_finished
    if got_meta and not meta_sent:
        meta_sent = True
        ti = h.torrent_file()
        emit("metadata", bytes=ti.total_size(), pieces=ti.num_pieces())
    if got_meta and not done and now - polled > 0.2:
        polled = now
        poll_peers()
        done = h.status().is_finished  # in case the alert is lost
    if done:
        poll_peers()
        s = h.status()
        emit("complete", bytes=s.total_wanted, downloaded=s.total_payload_download,
             useful=s.total_wanted_done, wasted=s.total_redundant_bytes + s.total_failed_bytes,
             failed_bytes=s.total_failed_bytes, peers=len(useful), useful_by_peer_id=useful,
             links=sorted(set(links.values())), version=lt.__version__)
        break
    if now - last > 2:
        last = now
        s = h.status()
        log("status", s.state, "progress %.3f" % s.progress, "peers", s.num_peers, "has_metadata", s.has_metadata)

# The session's destructor waits for the disk threads: every byte is in the
# files once the process has exited.
del h
del ses
