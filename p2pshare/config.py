"""Every timeout, limit and default in one place.

Each limit that a remote party could push against (message length, metadata size,
bencode depth, peers, requests in flight, DHT storage) is named here; the code that
enforces it refers to the field, so the number is never repeated elsewhere.

All sections are frozen dataclasses: build a variant with ``dataclasses.replace``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

__all__ = [
    "BLOCK_SIZE",
    "BencodeLimits",
    "ChokerConfig",
    "Config",
    "ConnectorConfig",
    "DEFAULT_BOOTSTRAP",
    "DefenceConfig",
    "DhtConfig",
    "EngineConfig",
    "LinkConfig",
    "MetainfoLimits",
    "PickerConfig",
    "StorageConfig",
    "SwarmConfig",
    "TrackerConfig",
    "WireLimits",
    "V2Config",
    "HashesLimits",
    "UtpConfig",
    "TransportConfig",
    "DEFAULT_CONFIG",
    "EncryptionPolicy",
    "MseConfig",
    "LsdConfig",
    "NatPmpConfig",
    "PortMapConfig",
    "HashExchangeConfig",
    "UpdatableConfig",
    "ReachabilityConfig",
]

KiB = 1024
MiB = 1024 * KiB

#: The unit of requests on the wire (BEP 3: "All current implementations use 2^14").
BLOCK_SIZE = 16 * KiB

#: Public Mainline DHT routers: the default for real users only.  Tests, the demo
#: and benchmarks always pass loopback bootstrap nodes instead.
DEFAULT_BOOTSTRAP: tuple[tuple[str, int], ...] = (
    ("router.bittorrent.com", 6881),
    ("dht.transmissionbt.com", 6881),
    ("router.utorrent.com", 6881),
    ("dht.libtorrent.org", 25401),
)


@dataclass(frozen=True, slots=True)
class BencodeLimits:
    """Limits for decoding bencode that came from outside."""

    max_depth: int = 32  #: nesting of lists/dicts; libtorrent uses 100, KRPC needs 4
    max_input: int = 16 * MiB  #: largest document we will decode at all


@dataclass(frozen=True, slots=True)
class MetainfoLimits:
    """Limits for manifests we parse and build."""

    max_metadata_size: int = 8 * MiB  #: the info dict (BEP 9 metadata_size cap too)
    max_torrent_file: int = 16 * MiB  #: a whole .torrent file on disk
    max_files: int = 1_000_000
    max_path_components: int = 256
    max_component_bytes: int = 255
    min_piece_length: int = 16 * KiB
    max_piece_length: int = 16 * MiB  #: for pieces we choose; parsing accepts up to 128 MiB
    max_parse_piece_length: int = 128 * MiB
    target_pieces_low: int = 1000  #: automatic piece size aims at 1000..2000 pieces
    target_pieces_high: int = 2000


@dataclass(frozen=True, slots=True)
class WireLimits:
    """BEP 3/6/9/10 limits a remote peer can push against."""

    handshake_timeout: float = 10.0
    max_pending_incoming: int = 64  #: accepted connections still waiting for their handshake
    max_message_length: int = BLOCK_SIZE + 13 + 1024  #: longest non-bitfield message
    max_request_length: int = BLOCK_SIZE  #: a request for more is a protocol error
    max_extended_message: int = 64 * KiB  #: one BEP 10 message (ut_metadata: 16 KiB + dict)
    max_incoming_requests: int = 500  #: queued requests per peer; our `reqq`
    max_allowed_fast: int = 10  #: BEP 6 allowed-fast set size we grant/accept
    keepalive_interval: float = 90.0  #: send a keep-alive after this much silence
    idle_timeout: float = 180.0  #: drop a peer silent this long (BEP 3: ~2 minutes)
    max_extensions: int = 64  #: entries in an extended handshake's `m`
    max_client_name: int = 64  #: bytes of the `v` field we keep
    max_unknown_bitfield: int = 1 * MiB  #: bitfield bytes accepted before we know the piece count
    max_late_blocks: int = 1024  #: cancelled/choke-dropped requests remembered so late pieces are not errors


@dataclass(frozen=True, slots=True)
class PickerConfig:
    """Piece selection and request pipelining."""

    random_first_pieces: int = 4  #: pieces picked at random before rarest-first
    initial_queue: int = 16  #: outstanding blocks per peer to start with
    min_queue: int = 4
    max_queue: int = 500  #: upper bound whatever the peer's `reqq`
    queue_seconds: float = 1.0  #: keep this many seconds of the peer's rate in flight
    snub_timeout: float = 30.0  #: no block for this long while requests are out: snubbed
    endgame_max_requesters: int = 4  #: endgame: a block is requested from at most this many peers at once


@dataclass(frozen=True, slots=True)
class ChokerConfig:
    """Upload slots (BEP 3 tit-for-tat)."""

    regular_slots: int = 4
    rechoke_interval: float = 10.0
    optimistic_interval: float = 30.0
    optimistic_slots: int = 1  #: unchoked at random, on top of the regular slots
    new_peer_seconds: float = 60.0  #: peers seen for less than this are 3x likely as optimistic unchoke
    seed_turn: float = 30.0  #: seeding: an unchoked peer keeps its slot this long before others' turn


@dataclass(frozen=True, slots=True)
class StorageConfig:
    """Disk and memory for the data path."""

    max_pieces_in_flight_bytes: int = 64 * MiB  #: partial-piece buffers, all peers
    hash_workers: int = 2
    read_cache_bytes: int = 16 * MiB  #: whole pieces kept for serving uploads (at least one)
    max_open_files: int = 64


@dataclass(frozen=True, slots=True)
class SwarmConfig:
    """Connections and policy for one torrent."""

    max_peers: int = 50  #: connections per torrent
    max_half_open: int = 16
    connect_timeout: float = 10.0
    retry_base: float = 2.0  #: reconnect back-off: base * 2**attempt ...
    retry_max: float = 120.0  #: ... capped here
    max_retries: int = 8
    max_known_peers: int = 2000  #: addresses we remember (from PEX/DHT/--peer)
    max_banned_ips: int = 4096  #: banned addresses remembered; the oldest ban is forgotten first
    metadata_request_timeout: float = 15.0
    status_interval: float = 1.0
    #: Initial seeding (we started with every piece): tell each peer about a few pieces at a
    #: time, spreading different pieces to different peers (BEP 16 style), so leechers trade
    #: among themselves instead of each taking a whole copy from us.
    super_seed: bool = False
    super_seed_window: int = 2 * MiB  #: bytes of revealed-but-not-yet-had pieces per peer (>= 2 pieces)


@dataclass(frozen=True, slots=True)
class DhtConfig:
    """Mainline DHT (BEP 5) node settings and storage limits."""

    k: int = 8
    alpha: int = 3
    query_timeout: float = 2.0
    node_questionable_after: float = 15 * 60.0
    bucket_refresh: float = 15 * 60.0
    token_rotation: float = 5 * 60.0
    peer_ttl: float = 30 * 60.0
    max_peers_per_hash: int = 200
    max_stored_peers: int = 50_000  #: all info hashes together
    max_info_hashes: int = 5_000
    max_values_returned: int = 50  #: peers in one get_peers answer (fits one UDP packet)
    max_packet: int = 1500  #: datagrams larger than this are dropped unread
    max_outgoing_queue: int = 1000
    incoming_rate_per_source: float = 20.0  #: queries/s per source IP (token bucket)
    incoming_burst: int = 40
    reannounce_interval: float = 15 * 60.0
    lookup_max_rounds: int = 20
    replacement_cache: int = 8
    read_only: bool = False  #: BEP 43
    bootstrap: tuple[tuple[str, int], ...] = DEFAULT_BOOTSTRAP
    node_max_failures: int = 3  #: failed queries in a row before a node is bad
    maintenance_interval: float = 5.0  #: seconds between routing-table/peer-store upkeep ticks
    pings_per_tick: int = 4  #: questionable nodes pinged per maintenance tick
    max_pending_pings: int = 64  #: verification/upkeep pings in flight at once
    adaptive_timeout: bool = True  #: derive the short (slow-query) timeout from measured RTTs
    min_short_timeout: float = 0.25  #: lower bound of the adaptive short timeout
    initial_short_timeout: float = 0.5  #: short timeout before any round-trip time was measured
    lookup_max_candidates: int = 64  #: candidates one lookup keeps (nearest first)
    external_ip_votes: int = 3  #: distinct nodes that must report our IP (BEP 42 `ip`) before we adopt it
    secure_node_id: bool = True  #: BEP 42: derive our id from the external IP once known
    enforce_node_id: bool = False  #: BEP 42: keep nodes whose id does not match their IP out of the table
    bootstrap_retry: float = 60.0  #: retry bootstrap this often while the table is empty
    max_rate_sources: int = 10_000  #: source IPs tracked by the incoming-query rate limiter
    announce_timeout: float = 30.0  #: bound on one announce (lookup + announce_peer round)
    state_save_interval: float = 300.0  #: seconds between saves of node id + good nodes
    max_saved_nodes: int = 200  #: good nodes written to the state file
    resolve_timeout: float = 5.0  #: bound on resolving one bootstrap host name
    # BEP 44 items (get/put): every bound a remote putter can push against.
    max_item_value: int = 1000  #: bencoded size of an item's ``v``; larger puts get error 205
    max_item_salt: int = 64  #: bytes of a mutable item's salt; longer gets error 207
    max_items: int = 700  #: items stored for others, all targets (libtorrent: 700); about 1 MiB
    max_items_per_source: int = 64  #: items one source IP may have stored here at once
    item_ttl: float = 2 * 3600.0  #: an item not put again within this long expires (libtorrent: 2 h)
    item_timeout: float = 30.0  #: bound on one get_item / put lookup in the engine


class EncryptionPolicy(StrEnum):
    """Whether peer links use Message Stream Encryption (MSE/PE); ``--encryption``."""

    PREFER = "prefer"  #: incoming: accept both; outgoing: encrypted first, plaintext on failure
    REQUIRE = "require"  #: RC4-encrypted links only, both ways
    OFF = "off"  #: plain BitTorrent only, both ways


@dataclass(frozen=True, slots=True)
class MseConfig:
    """Message Stream Encryption (MSE/PE): the handshake's limits and the policy."""

    policy: EncryptionPolicy = EncryptionPolicy.PREFER
    #: Bytes of PadA/PadB a peer may put before its synchronisation marker (the spec's 512);
    #: the marker must be found within this many bytes, or the handshake fails.
    sync_window: int = 512
    max_pad: int = 512  #: longest PadC/PadD a peer may announce (the spec's 512)
    max_initial_payload: int = 65535  #: longest IA (initial payload) a peer may announce
    send_pad_max: int = 512  #: our own pads are random, 0..this many bytes (<= 512)
    #: When the peer offers both plaintext and RC4 for the payload, choose RC4 (False: a
    #: plaintext payload after an obfuscated handshake, as libtorrent chooses by default).
    prefer_rc4: bool = True
    handshake_timeout: float = 15.0  #: seconds for the whole MSE handshake
    #: Reads and write batches of at least this many bytes are en/decrypted on a worker thread
    #: (RC4 in ``cryptography`` releases the GIL), overlapping the event loop; 0: all inline.
    offload_min_bytes: int = 64 * KiB
    #: Bytes queued for a worker per direction before reading pauses / ``writable`` turns False.
    max_offload_backlog: int = 4 * MiB


@dataclass(frozen=True, slots=True)
class V2Config:
    """BEP 52 manifests: the default format, and limits on the v2 parts a hostile .torrent could push."""

    max_tree_depth: int = 64  #: folders nested in a ``file tree`` (bencode depth is capped separately)
    max_piece_layers: int = 100_000  #: entries in the top-level ``piece layers`` dict
    max_pieces: int = 0x200000  #: pieces a v2 manifest may declare (libtorrent's cap; v1: by ``pieces``)
    default_format: str = "v1"  #: ``create``/``share`` default: v1-only clients see hybrid pad files as files


@dataclass(frozen=True, slots=True)
class HashesLimits:
    """BEP 52 hash request (21), hashes (22) and hash reject (23) messages a peer can send."""

    max_count: int = 8192  #: hashes in one request's base-layer range (libtorrent's cap: 128 MiB pieces)
    max_base_layer: int = 63  #: no merkle tree over 16 KiB leaves is taller than this
    max_proof_layers: int = 64  #: uncle layers asked for; bounded by the tree height


@dataclass(frozen=True, slots=True)
class NatPmpConfig:
    """NAT-PMP (RFC 6886) and PCP (RFC 6887) client: retransmission, leases, limits."""

    initial_timeout: float = 0.25  #: first retransmission wait; doubles after each try (RFC 6886 3.1)
    max_tries: int = 9  #: requests sent before the gateway is taken not to speak NAT-PMP/PCP
    lifetime: int = 7200  #: seconds asked for each mapping (RFC 6886 recommends two hours)
    renew_fraction: float = 0.5  #: renew a mapping when this part of its lease has run
    min_lifetime: int = 10  #: a granted lease shorter than this is renewed as if it were this long
    try_pcp: bool = True  #: speak PCP first, fall back to NAT-PMP when the gateway says so
    max_datagram: int = 1100  #: larger answers are refused unread (PCP's maximum message size)
    max_mappings: int = 8  #: mappings one client keeps
    close_timeout: float = 2.0  #: bound on deleting the mappings on exit


@dataclass(frozen=True, slots=True)
class PortMapConfig:
    """The port-mapping service: which protocols, and bounds on each network wait."""

    enabled: bool = True
    protocols: tuple[str, ...] = ("natpmp", "upnp")  #: tried together; the first to map wins
    description: str = "p2pshare"  #: the mapping's name on the router (UPnP)
    upnp_search_timeout: float = 3.0  #: SSDP M-SEARCH wait for an Internet gateway device
    upnp_http_timeout: float = 5.0  #: one SOAP call or description fetch
    upnp_lease: int = 3600  #: seconds asked for (0 = permanent, used when the router insists)
    upnp_port_attempts: int = 4  #: external ports tried when ours is mapped to another host
    upnp_max_description: int = 256 * 1024  #: a gateway's description XML larger than this is refused
    close_timeout: float = 3.0  #: bound on removing every mapping on exit
    retry_interval: float = 300.0  #: after a failure, try the whole discovery again this often


@dataclass(frozen=True, slots=True)
class LsdConfig:
    """BEP 14 Local Service Discovery."""

    enabled: bool = True
    group_v4: tuple[str, int] = ("239.192.152.143", 6771)
    group_v6: tuple[str, int] = ("ff15::efc0:988f", 6771)
    announce_interval: float = 5 * 60.0  #: re-announce every torrent this often
    min_announce_gap: float = 60.0  #: BEP 14: no more than one announce a minute (v4 and v6 together)
    max_message: int = 1400  #: BT-SEARCH datagrams larger than this are refused unread
    max_infohashes: int = 32  #: info hashes in one message (ours and others')
    max_headers: int = 16  #: header lines in one message
    ttl: int = 1  #: multicast hops (stay on the LAN)


@dataclass(frozen=True, slots=True)
class Config:
    """The whole configuration of a session."""

    bencode: BencodeLimits = field(default_factory=BencodeLimits)
    metainfo: MetainfoLimits = field(default_factory=MetainfoLimits)
    wire: WireLimits = field(default_factory=WireLimits)
    picker: PickerConfig = field(default_factory=PickerConfig)
    choker: ChokerConfig = field(default_factory=ChokerConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    swarm: SwarmConfig = field(default_factory=SwarmConfig)
    dht: DhtConfig = field(default_factory=DhtConfig)
    mse: MseConfig = field(default_factory=MseConfig)
    engine: EngineConfig = field(default_factory=lambda: EngineConfig())
    link: LinkConfig = field(default_factory=lambda: LinkConfig())
    v2: V2Config = field(default_factory=V2Config)
    hashes: HashesLimits = field(default_factory=HashesLimits)
    utp: UtpConfig = field(default_factory=lambda: UtpConfig())
    transport: TransportConfig = field(default_factory=lambda: TransportConfig())
    tracker: TrackerConfig = field(default_factory=lambda: TrackerConfig())
    natpmp: NatPmpConfig = field(default_factory=NatPmpConfig)
    portmap: PortMapConfig = field(default_factory=PortMapConfig)
    lsd: LsdConfig = field(default_factory=LsdConfig)
    announce: AnnounceConfig = field(default_factory=lambda: AnnounceConfig())
    stream: StreamConfig = field(default_factory=lambda: StreamConfig())
    hash_exchange: HashExchangeConfig = field(default_factory=lambda: HashExchangeConfig())
    updatable: UpdatableConfig = field(default_factory=lambda: UpdatableConfig())
    reach: ReachabilityConfig = field(default_factory=lambda: ReachabilityConfig())
    defence: DefenceConfig = field(default_factory=lambda: DefenceConfig())
    terminal: TerminalConfig = field(default_factory=lambda: TerminalConfig())
    coop: CoopConfig = field(default_factory=lambda: CoopConfig())
    connector: ConnectorConfig = field(default_factory=lambda: ConnectorConfig())


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """Timers and sizes of the engine's own work (not limits a peer can push)."""

    resume_save_interval: float = 5.0  #: seconds between resume saves while pieces arrive
    max_status_files: int = 200  #: status snapshots list per-file progress up to this many files
    dht_search_first_timeout: float = 10.0  #: bound on each DHT peer search of a download
    dht_search_pause: float = 5.0  #: pause after the first search; doubles after each one ...
    dht_search_max_pause: float = 300.0  #: ... up to this
    task_close_timeout: float = 5.0  #: bound on waiting for a swarm's helper tasks at close
    demo_announce_timeout: float = 15.0  #: bound on each demo seeder's DHT announce
    metadata_requests_per_peer: int = 4  #: BEP 9 pieces asked of one peer at once
    rate_time_constant: float = 2.0  #: seconds: the transfer rates' moving average
    rate_min_interval: float = 0.05  #: seconds of data before a first rate is guessed
    request_top_up_divisor: int = 4  #: top requests up once 1/this of a peer's queue is free
    spare_buffer_divisor: int = 4  #: keep at most (in-flight budget / this) piece buffers for reuse
    demo_payload_size: int = 8 * MiB  #: the demo's generated payload without sample_files/


@dataclass(frozen=True, slots=True)
class LinkConfig:
    """Buffers of one peer link (the TCP link; other transports keep the same marks)."""

    read_buffer: int = 256 * KiB  #: bytes one read may return (one buffer per thread, shared by its links)
    write_high_water: int = 1 * MiB  #: above this many unsent bytes the link is not writable ...
    write_low_water: int = 256 * KiB  #: ... until they drain below this


@dataclass(frozen=True, slots=True)
class UtpConfig:
    """uTP (BEP 29): packet sizes, LEDBAT, timers and every buffer a peer can fill."""

    #: Datagram size (header included) on paths we know nothing about: fits a 1,500-byte
    #: MTU with IPv6, tunnels and PPPoE to spare (libtorrent uses about the same).
    packet_size: int = 1400
    #: Datagram size tried on destinations inside ``large_packet_networks`` (loopback):
    #: one probe packet of this size; if it is not acknowledged we stay at ``packet_size``.
    large_packet_size: int = 65_000
    large_packet_networks: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    max_datagram: int = 65_507  #: larger datagrams are dropped unread
    target_delay: float = 0.100  #: LEDBAT target queuing delay (BEP 29: 100 ms)
    gain_packets: float = 2.0  #: LEDBAT: cwnd growth per RTT at zero delay, in packets
    base_delay_interval: float = 60.0  #: base delay: one minimum per interval ...
    base_delay_history: int = 2  #: ... over this many intervals (BEP 29: 2 minutes)
    initial_cwnd_packets: int = 4
    min_cwnd_packets: int = 2  #: cwnd never drops below this many packets (except after a timeout)
    loss_multiplier: float = 0.5  #: cwnd is multiplied by this on a loss (once per window)
    slow_start: bool = True  #: grow by the bytes acknowledged until the first loss or delay
    initial_rto: float = 1.0
    min_rto: float = 0.5  #: BEP 29: the timeout is never below 500 ms
    max_rto: float = 30.0  #: back-off stops doubling here
    max_retransmits: int = 6  #: timeouts in a row before the connection is declared dead
    syn_retransmits: int = 3  #: SYNs sent before connect gives up
    dup_ack_limit: int = 3  #: duplicate acks / later packets SACKed that make a packet lost
    recv_buffer: int = 4 * MiB  #: bytes buffered per connection (in order + out of order)
    max_total_recv_buffer: int = 64 * MiB  #: the same, all connections together
    max_reorder_packets: int = 1024  #: packets accepted beyond ack_nr; later ones are dropped
    #: packets that did not fit our receive window (dropped) before the peer is cut off; zero-window
    #: probes come once per timeout, so only a peer that ignores the window gets there
    max_window_violations: int = 256
    max_sack_bytes: int = 32  #: SACK bitmask we send covers at most this many bytes (x8 packets)
    max_inflight_packets: int = 2048  #: packets sent and not yet acknowledged
    keepalive_interval: float = 29.0  #: send an ack after this long without sending anything
    #: delayed acks: in-order data is acknowledged every this many packets ...
    ack_every_packets: int = 2
    delayed_ack: float = 0.005  #: ... or after this long (out-of-order data, FIN: at once)
    idle_timeout: float = 90.0  #: close when nothing was received for this long
    syn_recv_timeout: float = 10.0  #: an accepted SYN not followed by a packet is dropped
    fin_linger: float = 10.0  #: keep a closed connection this long to finish the FIN exchange
    max_connections: int = 1000
    max_half_open: int = 64  #: incoming connections that have sent only a SYN
    max_resets_per_second: float = 50.0  #: ST_RESET replies to unknown connections (token bucket)
    connect_timeout: float = 10.0  #: bound on ``UtpManager.connect`` (io layer)
    socket_buffer: int = 4 * MiB  #: SO_RCVBUF / SO_SNDBUF asked for the UDP socket (io layer)
    write_high_water: int = 1 * MiB  #: a link stops being writable above this (io layer)
    write_low_water: int = 256 * KiB  #: ``wait_writable`` returns below this (io layer)
    read_batch: int = 64  #: datagrams read per wake-up from uTP's own socket (io layer)
    max_send_queue: int = 4096  #: datagrams waiting for a full socket buffer; more are dropped (io layer)
    #: connections (both directions) from one IP; more incoming SYNs are dropped, so one host
    #: cannot take every slot of ``max_connections``
    max_connections_per_ip: int = 8
    #: LEDBAT++ multiplicative decrease past the target: the share of a window shed per round
    #: trip per target's worth of excess delay ...
    delay_decrease: float = 1.0
    max_delay_decrease: float = 0.5  #: ... and at most this share per round trip



@dataclass(frozen=True, slots=True)
class TransportConfig:
    """Which transports a session uses, which it dials first, and BEP 55 hole punching."""

    mode: str = "both"  #: "tcp", "utp" or "both" (``--transport``): what we listen on and dial
    #: Dial uTP first to peers that said they speak it (PEX flag, an incoming uTP link);
    #: TCP first to the others.  Measured (benchmarks/results/utp_session.txt): whole sessions
    #: cost about the same CPU per GiB on either (3.6-4.8 s), so the fallback cost decides: a
    #: TCP dial to a uTP-only peer is refused or closed at once, while a uTP SYN to a TCP-only
    #: peer waits out the connect timeout.
    prefer_utp_when_announced: bool = True
    prefer_utp: bool = False  #: dial uTP first even to peers that announced nothing
    holepunch: bool = True  #: offer ut_holepunch (relay, rendezvous, connect)
    #: relayed rendezvous per initiating peer per minute (a peer cannot use us as an amplifier)
    relay_per_peer_per_minute: int = 10
    relay_per_minute: int = 60  #: relayed rendezvous per torrent per minute, all peers together
    rendezvous_per_minute: int = 20  #: rendezvous we ask for per torrent per minute
    rendezvous_fanout: int = 3  #: relays asked for one target, one after another on errors
    #: uTP dials a relay's ``connect`` messages may start per torrent per minute
    connects_per_minute: int = 30
    #: failed direct dials of an address before we ask a relay for a rendezvous
    holepunch_after_failures: int = 1
    #: a target asked of relays at most this often (seconds), whatever they answer
    rendezvous_retry: float = 30.0
    max_pending_rendezvous: int = 64  #: targets we wait on a ``connect`` for (oldest forgotten)
    #: incoming uTP links that have not sent a routable handshake yet
    max_pending_utp_incoming: int = 64


@dataclass(frozen=True, slots=True)
class TrackerConfig:
    """HTTP(S) and UDP trackers (BEP 3/7/12/15/23): limits on what a tracker can send, and timing."""

    enabled: bool = True  #: ``--no-trackers`` turns this off
    numwant: int = 50  #: peers we ask for in one announce
    max_peers: int = 500  #: peers kept from one response (IPv4 and IPv6 together); the rest are dropped
    max_response_bytes: int = 256 * KiB  #: body of one HTTP answer; more is a protocol error
    max_header_bytes: int = 16 * KiB  #: status line plus headers of one HTTP answer
    max_headers: int = 64  #: header lines in one HTTP answer
    max_redirects: int = 5  #: HTTP redirects followed for one request
    max_text: int = 1024  #: bytes kept of a failure reason / warning message
    max_tracker_id: int = 256  #: bytes of a ``tracker id`` we echo back
    max_scrape_files: int = 64  #: info hashes asked about / accepted in one scrape
    max_trackers: int = 64  #: trackers kept from a manifest or magnet (all tiers)
    decode_depth: int = 8  #: bencode nesting in a tracker answer (scrape needs 3)
    connect_timeout: float = 10.0  #: TCP + TLS set-up of one HTTP request
    http_timeout: float = 30.0  #: one whole HTTP request, redirects included
    resolve_timeout: float = 5.0  #: resolving a tracker's host name
    udp_retry_base: float = 15.0  #: BEP 15: wait 15 * 2**n for an answer ...
    udp_max_retries: int = 3  #: ... retransmitting up to this n (BEP 15 allows 8: over 2 hours) ...
    udp_retry_cap: float = 3840.0  #: ... and never waiting longer than this for one try
    udp_connection_lifetime: float = 60.0  #: BEP 15: a connection id is good for one minute
    udp_max_packet: int = 65536  #: a received datagram larger than this is dropped
    default_interval: float = 1800.0  #: re-announce interval when the tracker names none
    min_interval: float = 60.0  #: floor on any interval a tracker asks for (no hammering)
    max_interval: float = 6 * 3600.0  #: ceiling on any interval a tracker asks for
    retry_base: float = 60.0  #: every tracker failed: try again after base * 2**n ...
    retry_max: float = 3600.0  #: ... capped here
    stopped_timeout: float = 5.0  #: the 'stopped' announce on close waits at most this long
    close_timeout: float = 1.0  #: closing one HTTP connection (TLS goodbye) waits at most this long


@dataclass(frozen=True, slots=True)
class AnnounceConfig:
    """How a running torrent uses its trackers (the protocol limits are in :class:`TrackerConfig`)."""

    scrape_interval: float = 1800.0  #: seconds between scrapes of the tracker in use (first: after announce)
    first_scrape_delay: float = 2.0  #: the first scrape waits this long after the torrent starts
    unknown_left: int = 16 * KiB  #: ``left`` we report while the manifest is unknown (not zero: not a seed)


@dataclass(frozen=True, slots=True)
class StreamConfig:
    """Choosing files and streaming: ``--select``, ``--sequential``, ``--stdout``."""

    #: --sequential: the read-ahead window (pieces from the first missing one that may be in flight)
    #: is this many pieces, or enough pieces to cover ``read_ahead_bytes``, whichever is more
    read_ahead_pieces: int = 8
    read_ahead_bytes: int = 8 * MiB
    stdout_chunk: int = 256 * KiB  #: bytes written to standard output at once
    stdout_poll: float = 0.05  #: how often the streamer looks for the next verified piece
    #: the hidden ".<info hash><suffix>" file beside a download keeps straddling pieces' unselected bytes
    parts_suffix: str = ".parts"


@dataclass(frozen=True, slots=True)
class HashExchangeConfig:
    """The engine's BEP 52 hash exchange: fetching piece layers, serving them, and the flood guard."""

    requests_per_peer: int = 4  #: hash requests we keep in flight with one peer
    request_timeout: float = 10.0  #: seconds before an unanswered hash request goes to another peer
    max_served_per_tick: int = 256  #: hash requests one peer may send per status tick before it floods
    max_failed_pieces_kept: int = 4  #: failed v2 pieces kept until their leaf hashes name the bad blocks


@dataclass(frozen=True, slots=True)
class UpdatableConfig:
    """Updatable shares (BEP 46): how often the publisher looks and republishes, the follower polls."""

    watch_interval: float = 1.0  #: seconds between looks at a published folder for changes
    settle_time: float = 0.5  #: a change is hashed once the folder stayed the same this long
    republish_interval: float = 1800.0  #: put the item again this often (BEP 44 items expire in ~2 h)
    put_timeout: float = 15.0  #: bound on one put of the item
    lookup_timeout: float = 5.0  #: bound on one DHT lookup of the item (publisher's seq, follower's poll)
    follow_interval: float = 2.0  #: seconds between a follower's lookups of the item
    metadata_timeout: float = 120.0  #: a version whose manifest never arrives is skipped after this


@dataclass(frozen=True, slots=True)
class ReachabilityConfig:
    """The engine's use of port mapping and LSD, and `p2pshare doctor`'s bounds."""

    share_settle_timeout: float = 6.0  #: `share` waits this long for a mapping before printing its magnet
    close_timeout: float = 5.0  #: bound on closing the port mapper (deleting mappings) on exit
    lsd_close_timeout: float = 2.0  #: bound on closing the LSD sockets on exit
    dht_vote_weight: int = 2  #: the gateway's external address counts as this many DHT voters (BEP 42)
    doctor_map_timeout: float = 8.0  #: doctor: wait for the port mapping to settle
    doctor_dht_wait: float = 10.0  #: doctor: seconds given to the DHT bootstrap ("nodes after N s")
    doctor_lookups: int = 5  #: doctor: get_peers lookups timed for p50/p95
    doctor_lookup_timeout: float = 5.0  #: doctor: bound on each timed lookup
    doctor_lsd_wait: float = 2.0  #: doctor: wait for our own LSD announce to come back


@dataclass(frozen=True, slots=True)
class DefenceConfig:
    """Limits against hostile peers (issue 12): what one peer may make us hold or believe."""

    #: unsent bytes queued for one peer (our queue plus the transport's); past it the peer is
    #: not reading what it asks for: stop answering and drop it.  Uploads wait for the link's
    #: high-water mark (LinkConfig.write_high_water), so an honest reader never comes near this.
    max_outgoing_buffer: int = 4 * MiB
    #: failed pieces whose per-block senders and digests are kept until the piece verifies
    smart_ban_max_pieces: int = 64
    #: distinct BEP 9 metadata_size claims fetched side by side; a further size waits
    max_metadata_sizes: int = 8


@dataclass(frozen=True, slots=True)
class TerminalConfig:
    """How the command line watches a run: stall checks, live rates, redraws."""

    stall_poll: float = 0.5  #: seconds between checks of --timeout (stalled) and --max-time
    rate_window: float = 3.0  #: seconds of snapshots the live rate is averaged over
    live_refresh: float = 4.0  #: redraws of the live view per second
    json_interval: float = 1.0  #: seconds between --json progress events
    plain_interval: float = 2.0  #: seconds between status lines when stdout is not a terminal
    finding_interval: float = 5.0  #: seconds between "finding peers" lines in plain mode
    check_batch_bytes: int = 64 * MiB  #: files on disk are checked in batches of this much (Ctrl-C between)


@dataclass(frozen=True, slots=True)
class CoopConfig:
    """A swarm, not a star: DHT presence while downloading, PEX (BEP 11), rate limits."""

    lookup_few_peers: int = 8  #: below this many connected peers, DHT lookups repeat often ...
    lookup_pause_few: float = 5.0  #: ... this many seconds apart ...
    lookup_pause_many: float = 300.0  #: ... otherwise every few minutes
    pex_interval: float = 60.0  #: BEP 11: at most one ut_pex message per peer this often
    pex_first_delay: float = 2.0  #: the first ut_pex message to a peer goes this soon after its handshake
    pex_max_added: int = 50  #: added peers per message we send (BEP 11 says at most 50)
    pex_max_dropped: int = 50  #: dropped peers per message we send
    pex_max_received: int = 200  #: added (v4 + v6) entries a received message may carry; more is an error
    pex_max_received_dropped: int = 200  #: dropped entries a received message may carry
    pex_max_payload: int = 16 * KiB  #: bytes of one received ut_pex message (200 v6 entries fit)
    pex_min_gap: float = 20.0  #: messages from one peer closer than this are ignored (flooding)
    pex_flags_remembered: int = 2000  #: addresses whose uTP/encryption flags (from PEX) we pass on
    max_up: int = 0  #: global upload cap in bytes/s (0: none); ``--max-up``
    max_down: int = 0  #: global download cap in bytes/s (0: none); ``--max-down``
    bucket_seconds: float = 0.25  #: a rate bucket holds at most this many seconds of its rate


@dataclass(frozen=True, slots=True)
class ConnectorConfig:
    """The session's connector: MSE/PE on the links it dials and accepts (the policy is in MseConfig)."""

    #: Addresses whose encryption needs we remember (encrypted only / plaintext only); oldest forgotten first.
    max_remembered_peers: int = 4096
    #: Incoming MSE handshakes in progress at once; more are refused (each holds a DH key and buffers).
    max_pending_accepts: int = 64
    #: Worker threads for RC4 of large reads and writes (cryptography releases the GIL); 0: inline only.
    crypto_workers: int = 1


DEFAULT_CONFIG = Config()
