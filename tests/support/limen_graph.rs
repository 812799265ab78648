//! A four-node limen-core graph, generic over its memory manager, written
//! only against limen-core's public API (the shape its codegen emits for a
//! concurrent graph). Shared by `tests/limen_*.rs` and
//! `examples/limen_pipeline.rs`, which include it with `#[path]`.
//!
//! ```text
//! source ──e0──▶ double ──e1──▶ increment ──e2──▶ sink
//! ```
//!
//! Each edge is a limen `ConcurrentEdge` with its own memory manager `M`.
//! Every frame counts its creation and its drop in a shared [`Ledger`], and
//! the sink checks that each frame arrives in order carrying
//! `2 * seq + 1`, so a run can prove that nothing leaked, was lost or was
//! corrupted.
#![allow(dead_code)] // each includer uses its own subset

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use limen_core::edge::link::{EdgeDescriptor, EdgeLink};
use limen_core::edge::spsc_concurrent::ConcurrentEdge;
use limen_core::edge::{Edge, EdgeHandleKind, EdgeOccupancy, NoQueue, ScopedEdge};
use limen_core::errors::{GraphError, NodeError};
use limen_core::graph::{GraphApi, ScopedGraphApi};
use limen_core::memory::manager::{MemoryManager, ScopedManager};
use limen_core::memory::static_manager::StaticMemoryManager;
use limen_core::memory::{BufferDescriptor, PlacementAcceptance};
use limen_core::message::payload::Payload;
use limen_core::message::{Message, MessageHeader};
use limen_core::node::link::{NodeDescriptor, NodeLink};
use limen_core::node::{Node, NodeCapabilities, NodeKind, ProcessResult, StepContext, StepResult};
use limen_core::platform::PlatformClock;
use limen_core::platform::linux::StdLinuxMonotonicClock;
use limen_core::policy::{
    AdmissionPolicy, EdgePolicy, NodePolicy, OverBudgetAction, QueueCaps, WatermarkState,
};
use limen_core::runtime::LimenRuntime;
use limen_core::runtime::bench::concurrent_runtime::TestScopedRuntime;
use limen_core::scheduling::{Readiness, WorkerDecision, WorkerScheduler, WorkerState};
use limen_core::telemetry::{NoopTelemetry, Telemetry};
use limen_core::types::{EdgeIndex, NodeIndex, PortId, PortIndex, SequenceNumber, TraceId};

/// Nodes in the graph.
pub const NODES: usize = 4;
/// Real edges in the graph (the source has no ingress monitor edge).
pub const EDGES: usize = 3;

/// Shared counters: frames created and dropped, and what the sink saw.
#[derive(Debug, Default)]
pub struct Ledger {
    created: AtomicU64,
    dropped: AtomicU64,
    received: AtomicU64,
    /// Frames that reached the sink out of order or with a wrong value.
    corrupt: AtomicU64,
    /// Set by the source once it has produced every frame.
    source_done: AtomicBool,
}

impl Ledger {
    pub fn created(&self) -> u64 {
        self.created.load(Ordering::SeqCst)
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::SeqCst)
    }

    /// Frames alive anywhere right now.
    pub fn alive(&self) -> u64 {
        // Read `dropped` first: a frame is created before it is dropped,
        // so this order never underflows.
        let dropped = self.dropped();
        self.created() - dropped
    }

    pub fn received(&self) -> u64 {
        self.received.load(Ordering::SeqCst)
    }

    pub fn corrupt(&self) -> u64 {
        self.corrupt.load(Ordering::SeqCst)
    }

    /// The source is finished and no frame exists any more, so no node
    /// can make progress again.
    pub fn drained(&self) -> bool {
        self.source_done.load(Ordering::SeqCst) && self.alive() == 0
    }
}

/// The payload: a sequence number, a value each stage transforms, and the
/// ledger that counts the frame's life.
#[derive(Debug)]
pub struct Frame {
    pub seq: u64,
    pub value: u64,
    ledger: Arc<Ledger>,
}

impl Frame {
    pub fn new(seq: u64, value: u64, ledger: &Arc<Ledger>) -> Frame {
        ledger.created.fetch_add(1, Ordering::SeqCst);
        Frame {
            seq,
            value,
            ledger: ledger.clone(),
        }
    }
}

impl Drop for Frame {
    fn drop(&mut self) {
        self.ledger.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

impl Payload for Frame {
    fn buffer_descriptor(&self) -> BufferDescriptor {
        BufferDescriptor::new(16)
    }
}

/// An edge policy of `max_items` items that starts evicting the oldest
/// item at `soft_items`. With `soft_items == max_items` nothing is ever
/// evicted, because every node waits while its output is at the hard cap.
pub fn edge_policy(max_items: usize, soft_items: usize) -> EdgePolicy {
    EdgePolicy::new(
        QueueCaps::new(max_items, soft_items, None, None),
        AdmissionPolicy::DropOldest,
        OverBudgetAction::Drop,
    )
}

/// The parts of `Node` that are the same for every node here.
macro_rules! node_basics {
    ($kind:expr, $inputs:expr, $outputs:expr) => {
        fn describe_capabilities(&self) -> NodeCapabilities {
            NodeCapabilities::default()
        }

        fn input_acceptance(&self) -> [PlacementAcceptance; $inputs] {
            core::array::from_fn(|_| PlacementAcceptance::default())
        }

        fn output_acceptance(&self) -> [PlacementAcceptance; $outputs] {
            core::array::from_fn(|_| PlacementAcceptance::default())
        }

        fn policy(&self) -> NodePolicy {
            NodePolicy::default()
        }

        // limen-core declares this method only with its `bench` feature,
        // which the dev-dependency enables for its runtime.
        fn set_policy(&mut self, _policy: NodePolicy) {}

        fn node_kind(&self) -> NodeKind {
            $kind
        }

        fn initialize<C, Tel>(&mut self, _clock: &C, _telemetry: &mut Tel) -> Result<(), NodeError>
        where
            Tel: Telemetry,
        {
            Ok(())
        }

        fn start<C, Tel>(&mut self, _clock: &C, _telemetry: &mut Tel) -> Result<(), NodeError>
        where
            Tel: Telemetry,
        {
            Ok(())
        }

        fn on_watchdog_timeout<C, Tel>(
            &mut self,
            _clock: &C,
            _telemetry: &mut Tel,
        ) -> Result<StepResult, NodeError>
        where
            C: PlatformClock + Sized,
            Tel: Telemetry,
        {
            Ok(StepResult::NoInput)
        }

        fn stop<C, Tel>(&mut self, _clock: &C, _telemetry: &mut Tel) -> Result<(), NodeError>
        where
            Tel: Telemetry,
        {
            Ok(())
        }
    };
}

/// Produces frames `0..total`, one per step, never while its output edge
/// is at its hard cap.
pub struct Source {
    next: u64,
    total: u64,
    ledger: Arc<Ledger>,
}

impl Node<0, 1, (), Frame> for Source {
    node_basics!(NodeKind::Source, 0, 1);

    fn process_message<C>(
        &mut self,
        _msg: &Message<()>,
        _clock: &C,
    ) -> Result<ProcessResult<Frame>, NodeError>
    where
        C: PlatformClock + Sized,
    {
        Ok(ProcessResult::Skip)
    }

    fn step<'graph, 'telemetry, 'clock, InQ, OutQ, InM, OutM, C, Tel>(
        &mut self,
        ctx: &mut StepContext<
            'graph,
            'telemetry,
            'clock,
            0,
            1,
            (),
            Frame,
            InQ,
            OutQ,
            InM,
            OutM,
            C,
            Tel,
        >,
    ) -> Result<StepResult, NodeError>
    where
        InQ: Edge,
        OutQ: Edge,
        InM: MemoryManager<()>,
        OutM: MemoryManager<Frame>,
        C: PlatformClock + Sized,
        Tel: Telemetry + Sized,
    {
        if self.next == self.total {
            self.ledger.source_done.store(true, Ordering::SeqCst);
            return Ok(StepResult::Terminal);
        }
        if *ctx.out_occupancy(0).watermark() == WatermarkState::AtOrAboveHard {
            return Ok(StepResult::Backpressured);
        }
        let seq = self.next;
        self.next += 1;
        let mut header = MessageHeader::empty();
        header.set_trace_id(TraceId::new(seq));
        header.set_sequence(SequenceNumber::new(seq));
        header.set_creation_tick(ctx.now_ticks());
        ctx.push_output(0, Message::new(header, Frame::new(seq, seq, &self.ledger)))
    }
}

/// Replaces each frame by a new one whose value is `value * mul + add`,
/// never while its output edge is at its hard cap.
pub struct Stage {
    mul: u64,
    add: u64,
}

impl Node<1, 1, Frame, Frame> for Stage {
    node_basics!(NodeKind::Process, 1, 1);

    fn process_message<C>(
        &mut self,
        msg: &Message<Frame>,
        _clock: &C,
    ) -> Result<ProcessResult<Frame>, NodeError>
    where
        C: PlatformClock + Sized,
    {
        let frame = msg.payload();
        let value = frame.value * self.mul + self.add;
        let out = Frame::new(frame.seq, value, &frame.ledger);
        Ok(ProcessResult::Output(Message::new(*msg.header(), out)))
    }

    fn step<'graph, 'telemetry, 'clock, InQ, OutQ, InM, OutM, C, Tel>(
        &mut self,
        ctx: &mut StepContext<
            'graph,
            'telemetry,
            'clock,
            1,
            1,
            Frame,
            Frame,
            InQ,
            OutQ,
            InM,
            OutM,
            C,
            Tel,
        >,
    ) -> Result<StepResult, NodeError>
    where
        InQ: Edge,
        OutQ: Edge,
        InM: MemoryManager<Frame>,
        OutM: MemoryManager<Frame>,
        C: PlatformClock + Sized,
        Tel: Telemetry + Sized,
    {
        if *ctx.out_occupancy(0).watermark() == WatermarkState::AtOrAboveHard {
            return Ok(StepResult::Backpressured);
        }
        // The transform does not read the clock; `()` is limen's no-op one.
        ctx.pop_and_process(0, |msg| self.process_message(msg, &()))
    }
}

/// Consumes frames, checking order and value.
pub struct Sink {
    /// The lowest sequence number the next frame may carry.
    next_seq: u64,
}

impl Node<1, 0, Frame, ()> for Sink {
    node_basics!(NodeKind::Sink, 1, 0);

    fn process_message<C>(
        &mut self,
        msg: &Message<Frame>,
        _clock: &C,
    ) -> Result<ProcessResult<()>, NodeError>
    where
        C: PlatformClock + Sized,
    {
        let frame = msg.payload();
        // Evictions may skip sequence numbers, never reorder them.
        if frame.seq < self.next_seq || frame.value != 2 * frame.seq + 1 {
            frame.ledger.corrupt.fetch_add(1, Ordering::SeqCst);
        }
        self.next_seq = frame.seq + 1;
        frame.ledger.received.fetch_add(1, Ordering::SeqCst);
        Ok(ProcessResult::Consumed)
    }
}

/// The graph: nodes, edges, and one memory manager per edge.
pub struct Pipeline<M> {
    source: NodeLink<Source, 0, 1, (), Frame>,
    double: NodeLink<Stage, 1, 1, Frame, Frame>,
    increment: NodeLink<Stage, 1, 1, Frame, Frame>,
    sink: NodeLink<Sink, 1, 0, Frame, ()>,
    edges: [EdgeLink<ConcurrentEdge>; EDGES],
    managers: [M; EDGES],
    ledger: Arc<Ledger>,
}

impl<M: MemoryManager<Frame>> Pipeline<M> {
    /// A graph whose source produces `total` frames through edges of
    /// `policy`, storing the frames of edge `k` in `managers[k]`.
    pub fn new(total: u64, policy: EdgePolicy, managers: [M; EDGES]) -> Pipeline<M> {
        let ledger = Arc::new(Ledger::default());
        let node = |i: usize| NodeIndex::new(i);
        let port = |n: usize| PortId::new(node(n), PortIndex::new(0));
        let edges = [0, 1, 2].map(|k| {
            EdgeLink::new(
                ConcurrentEdge::new(*policy.caps().max_items()),
                EdgeIndex::new(k),
                port(k),
                port(k + 1),
                policy,
                Some(["e0", "e1", "e2"][k]),
            )
        });
        Pipeline {
            source: NodeLink::new(
                Source {
                    next: 0,
                    total,
                    ledger: ledger.clone(),
                },
                node(0),
                Some("source"),
            ),
            double: NodeLink::new(Stage { mul: 2, add: 0 }, node(1), Some("double")),
            increment: NodeLink::new(Stage { mul: 1, add: 1 }, node(2), Some("increment")),
            sink: NodeLink::new(Sink { next_seq: 0 }, node(3), Some("sink")),
            edges,
            managers,
            ledger,
        }
    }

    pub fn ledger(&self) -> &Arc<Ledger> {
        &self.ledger
    }

    pub fn managers(&self) -> &[M; EDGES] {
        &self.managers
    }

    /// Items each edge holds right now.
    pub fn edge_items(&self) -> [usize; EDGES] {
        let occupancy = |e: &EdgeLink<ConcurrentEdge>| *e.queue().occupancy(e.policy()).items();
        [0, 1, 2].map(|k| occupancy(&self.edges[k]))
    }

    /// Slots each edge's manager has in use right now.
    pub fn slots_in_use(&self) -> [usize; EDGES] {
        [0, 1, 2].map(|k| self.managers[k].capacity() - self.managers[k].available())
    }
}

impl<M: MemoryManager<Frame>> GraphApi<NODES, EDGES> for Pipeline<M> {
    fn get_node_descriptors(&self) -> [NodeDescriptor; NODES] {
        [
            self.source.descriptor(),
            self.double.descriptor(),
            self.increment.descriptor(),
            self.sink.descriptor(),
        ]
    }

    fn get_edge_descriptors(&self) -> [EdgeDescriptor; EDGES] {
        [0, 1, 2].map(|k| self.edges[k].descriptor())
    }

    fn get_node_policies(&self) -> [NodePolicy; NODES] {
        [
            self.source.policy(),
            self.double.policy(),
            self.increment.policy(),
            self.sink.policy(),
        ]
    }

    fn get_edge_policies(&self) -> [EdgePolicy; EDGES] {
        [0, 1, 2].map(|k| *self.edges[k].policy())
    }

    fn edge_occupancy_for<const E: usize>(&self) -> Result<EdgeOccupancy, GraphError> {
        let edge = self.edges.get(E).ok_or(GraphError::InvalidEdgeIndex)?;
        Ok(edge.queue().occupancy(edge.policy()))
    }

    fn write_all_edge_occupancies(
        &self,
        out: &mut [EdgeOccupancy; EDGES],
    ) -> Result<(), GraphError> {
        for (slot, edge) in out.iter_mut().zip(&self.edges) {
            *slot = edge.queue().occupancy(edge.policy());
        }
        Ok(())
    }

    fn refresh_occupancies_for_node<const I: usize, const IN: usize, const OUT: usize>(
        &self,
        out: &mut [EdgeOccupancy; EDGES],
    ) -> Result<(), GraphError> {
        // Edge k runs from node k to node k + 1.
        for (k, edge) in self.edges.iter().enumerate() {
            if k == I || k + 1 == I {
                out[k] = edge.queue().occupancy(edge.policy());
            }
        }
        Ok(())
    }

    fn step_node_by_index<C, T>(
        &mut self,
        index: usize,
        clock: &C,
        telemetry: &mut T,
    ) -> Result<StepResult, NodeError>
    where
        EdgePolicy: Copy,
        C: PlatformClock + Sized,
        T: Telemetry + Sized,
    {
        let [e0, e1, e2] = &mut self.edges;
        let [m0, m1, m2] = &mut self.managers;
        let (p0, p1, p2) = (*e0.policy(), *e1.policy(), *e2.policy());
        match index {
            0 => self.source.step(&mut StepContext::new(
                [] as [&mut NoQueue; 0],
                [e0.queue_mut()],
                [] as [&mut StaticMemoryManager<(), 1>; 0],
                [m0],
                [],
                [p0],
                0,
                [],
                [0],
                clock,
                telemetry,
            )),
            1 => self.double.step(&mut StepContext::new(
                [e0.queue_mut()],
                [e1.queue_mut()],
                [m0],
                [m1],
                [p0],
                [p1],
                1,
                [0],
                [1],
                clock,
                telemetry,
            )),
            2 => self.increment.step(&mut StepContext::new(
                [e1.queue_mut()],
                [e2.queue_mut()],
                [m1],
                [m2],
                [p1],
                [p2],
                2,
                [1],
                [2],
                clock,
                telemetry,
            )),
            3 => self.sink.step(&mut StepContext::new(
                [e2.queue_mut()],
                [] as [&mut NoQueue; 0],
                [m2],
                [] as [&mut StaticMemoryManager<(), 1>; 0],
                [p2],
                [],
                3,
                [2],
                [],
                clock,
                telemetry,
            )),
            _ => Err(NodeError::execution_failed()),
        }
    }
}

impl<M> ScopedGraphApi<NODES, EDGES> for Pipeline<M>
where
    M: ScopedManager<Frame>,
{
    /// One scoped thread per node, each with its own edge and manager
    /// handles, the way limen-core's codegen writes `run_scoped`.
    fn run_scoped<C, T, S>(&mut self, clock: C, telemetry: T, scheduler: S)
    where
        C: PlatformClock + Clone + Send + Sync + 'static,
        T: Telemetry + Clone + Send + 'static,
        S: WorkerScheduler + 'static,
    {
        let policy = [0, 1, 2].map(|k| *self.edges[k].policy());
        let producer = [0, 1, 2].map(|k| {
            self.edges[k]
                .queue()
                .scoped_handle(EdgeHandleKind::Producer)
        });
        let consumer = [0, 1, 2].map(|k| {
            self.edges[k]
                .queue()
                .scoped_handle(EdgeHandleKind::Consumer)
        });
        let stores = [0, 1, 2].map(|k| self.managers[k].scoped_handle());
        let frees = [0, 1, 2].map(|k| self.managers[k].scoped_handle());
        let [out0, out1, out2] = producer;
        let [in0, in1, in2] = consumer;
        let [store0, store1, store2] = stores;
        let [free0, free1, free2] = frees;
        let [p0, p1, p2] = policy;
        let (clock, scheduler) = (&clock, &scheduler);
        let (source, double, increment, sink) = (
            self.source.node_mut(),
            self.double.node_mut(),
            self.increment.node_mut(),
            self.sink.node_mut(),
        );
        let (t0, t1, t2, t3) = (
            telemetry.clone(),
            telemetry.clone(),
            telemetry.clone(),
            telemetry,
        );
        thread::scope(|scope| {
            scope.spawn(move || {
                let no_input: [NoQueue; 0] = [];
                let no_manager: [StaticMemoryManager<(), 1>; 0] = [];
                let ports = Ports::new(no_input, no_manager, [], [], [out0], [store0], [p0], [0]);
                work(source, 0, ports, clock, t0, scheduler)
            });
            scope.spawn(move || {
                let ports = Ports::new([in0], [free0], [p0], [0], [out1], [store1], [p1], [1]);
                work(double, 1, ports, clock, t1, scheduler)
            });
            scope.spawn(move || {
                let ports = Ports::new([in1], [free1], [p1], [1], [out2], [store2], [p2], [2]);
                work(increment, 2, ports, clock, t2, scheduler)
            });
            scope.spawn(move || {
                let no_output: [NoQueue; 0] = [];
                let no_manager: [StaticMemoryManager<(), 1>; 0] = [];
                let ports = Ports::new([in2], [free2], [p2], [2], no_output, no_manager, [], []);
                work(sink, 3, ports, clock, t3, scheduler)
            });
        });
    }
}

/// One worker's edge and manager handles, policies and edge ids.
struct Ports<const IN: usize, const OUT: usize, InQ, InM, OutQ, OutM> {
    inputs: [InQ; IN],
    in_managers: [InM; IN],
    in_policies: [EdgePolicy; IN],
    in_ids: [u32; IN],
    outputs: [OutQ; OUT],
    out_managers: [OutM; OUT],
    out_policies: [EdgePolicy; OUT],
    out_ids: [u32; OUT],
}

impl<const IN: usize, const OUT: usize, InQ, InM, OutQ, OutM> Ports<IN, OUT, InQ, InM, OutQ, OutM> {
    #[allow(clippy::too_many_arguments)]
    fn new(
        inputs: [InQ; IN],
        in_managers: [InM; IN],
        in_policies: [EdgePolicy; IN],
        in_ids: [u32; IN],
        outputs: [OutQ; OUT],
        out_managers: [OutM; OUT],
        out_policies: [EdgePolicy; OUT],
        out_ids: [u32; OUT],
    ) -> Self {
        Ports {
            inputs,
            in_managers,
            in_policies,
            in_ids,
            outputs,
            out_managers,
            out_policies,
            out_ids,
        }
    }
}

/// A worker loop: sample occupancy, ask the scheduler, step or wait.
fn work<const IN: usize, const OUT: usize, InP, OutP, N, InQ, InM, OutQ, OutM, C, T, S>(
    node: &mut N,
    node_id: u32,
    mut ports: Ports<IN, OUT, InQ, InM, OutQ, OutM>,
    clock: &C,
    mut telemetry: T,
    scheduler: &S,
) where
    InP: Payload,
    OutP: Payload,
    N: Node<IN, OUT, InP, OutP>,
    InQ: Edge,
    InM: MemoryManager<InP>,
    OutQ: Edge,
    OutM: MemoryManager<OutP>,
    C: PlatformClock,
    T: Telemetry,
    S: WorkerScheduler,
{
    let mut state = WorkerState::new(node_id as usize, NODES, clock.now_ticks());
    loop {
        state.current_tick = clock.now_ticks();
        let pressure = ports
            .outputs
            .iter()
            .zip(&ports.out_policies)
            .map(|(q, policy)| *q.occupancy(policy).watermark())
            .max()
            .unwrap_or(WatermarkState::BelowSoft);
        let has_input = IN == 0
            || ports
                .inputs
                .iter()
                .zip(&ports.in_policies)
                .any(|(q, policy)| *q.occupancy(policy).items() > 0);
        state.backpressure = pressure;
        state.readiness = match (has_input, pressure) {
            (false, _) => Readiness::NotReady,
            (true, WatermarkState::BelowSoft) => Readiness::Ready,
            (true, _) => Readiness::ReadyUnderPressure,
        };
        match scheduler.decide(&state) {
            WorkerDecision::Step => {
                let mut ctx = StepContext::new(
                    ports.inputs.each_mut(),
                    ports.outputs.each_mut(),
                    ports.in_managers.each_mut(),
                    ports.out_managers.each_mut(),
                    ports.in_policies,
                    ports.out_policies,
                    node_id,
                    ports.in_ids,
                    ports.out_ids,
                    clock,
                    &mut telemetry,
                );
                let result = node.step(&mut ctx);
                state.last_error = result.is_err();
                state.last_step = result.ok();
            }
            WorkerDecision::WaitMicros(micros) => {
                thread::sleep(Duration::from_micros(micros));
                state.last_step = None;
            }
            _ => break,
        }
    }
}

/// limen-core's concurrent scoped runtime, as the tests and the example
/// drive it.
pub type Runtime = TestScopedRuntime<StdLinuxMonotonicClock, NoopTelemetry, NODES, EDGES>;

/// Runs `graph` on limen-core's concurrent scoped runtime until `done`
/// holds for its ledger or `limit` passes; returns the time taken and
/// whether `done` held (false: timed out).
pub fn run_until<M>(
    graph: &mut Pipeline<M>,
    limit: Duration,
    done: impl Fn(&Ledger) -> bool + Send,
) -> (Duration, bool)
where
    M: ScopedManager<Frame>,
{
    let mut runtime = Runtime::new();
    runtime
        .init(graph, StdLinuxMonotonicClock::new(), NoopTelemetry)
        .expect("the graph validates");
    let stop = LimenRuntime::<Pipeline<M>, NODES, EDGES>::stop_handle(&runtime)
        .expect("the scoped runtime has a stop handle");
    let ledger = graph.ledger().clone();
    let start = Instant::now();
    let finished = thread::scope(|scope| {
        let watcher = scope.spawn(move || {
            let finished = loop {
                if done(&ledger) {
                    break true;
                }
                if start.elapsed() > limit {
                    break false;
                }
                thread::sleep(Duration::from_millis(1));
            };
            stop.request_stop();
            finished
        });
        runtime.run(graph).expect("the runtime runs");
        watcher.join().expect("the watcher does not panic")
    });
    (start.elapsed(), finished)
}
