// The MPI part of moesaic (docs/parallel.md): a second, optional addon (build/Release/moesaic_mpi.node)
// compiled only where `mpicc` exists, so `npm install` works without MPI. It exposes the handful of
// collectives expert parallelism needs, over raw bytes (the TypeScript Communicator does the typing
// and the counting): all-to-all-v (blocking and non-blocking, for chunked pipelining), all-gather-v,
// reduce-scatter of floats, all-reduce of doubles, barrier, and communicator splits (for the
// hierarchical all-to-all: ranks of one host, and one leader per host).
//
// Only the JavaScript main thread calls MPI, so MPI_THREAD_FUNNELED is enough; the kernel thread pool
// never touches it.
#define OMPI_SKIP_MPICXX 1
#include <mpi.h>
#include <napi.h>
#include <dlfcn.h>

#include <cstring>
#include <string>
#include <vector>

namespace {

std::vector<MPI_Comm> g_comms;  // index 0 = MPI_COMM_WORLD; splits append

struct Pending {
  MPI_Request request = MPI_REQUEST_NULL;
  // the arrays the request reads and writes, kept alive (and unmoved) until it completes
  std::vector<Napi::Reference<Napi::Value>> pinned;
  std::vector<int> counts;  // sendcounts, sdispls, recvcounts, rdispls must outlive the call too
  bool used = false;
};
std::vector<Pending> g_pending;

void Check(Napi::Env env, int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  throw Napi::Error::New(env, std::string(what) + ": " + std::string(msg, len));
}

MPI_Comm CommArg(const Napi::Value& v) {
  uint32_t i = v.As<Napi::Number>().Uint32Value();
  if (i >= g_comms.size()) throw Napi::Error::New(v.Env(), "unknown communicator " + std::to_string(i));
  return g_comms[i];
}

int CommSize(MPI_Comm c) {
  int n = 0;
  MPI_Comm_size(c, &n);
  return n;
}

struct Bytes {
  char* data;
  size_t length;
};

Bytes BytesArg(const Napi::Value& v, const char* name) {
  if (!v.IsTypedArray()) throw Napi::TypeError::New(v.Env(), std::string(name) + " must be a TypedArray");
  auto a = v.As<Napi::TypedArray>();
  auto buf = a.ArrayBuffer();
  return {static_cast<char*>(buf.Data()) + a.ByteOffset(), a.ByteLength()};
}

// per-peer byte counts (Int32Array of the communicator's size) and their prefix-sum displacements,
// checked against the buffer they index
void CountsArg(const Napi::Value& v, int n, size_t bufferBytes, const char* name, std::vector<int>& counts, std::vector<int>& displs) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
    throw Napi::TypeError::New(v.Env(), std::string(name) + " must be an Int32Array");
  }
  auto a = v.As<Napi::Int32Array>();
  if (static_cast<int>(a.ElementLength()) != n) {
    throw Napi::RangeError::New(v.Env(), std::string(name) + " needs one count per rank (" + std::to_string(n) + ")");
  }
  counts.assign(a.Data(), a.Data() + n);
  displs.assign(n, 0);
  size_t total = 0;
  for (int r = 0; r < n; r++) {
    if (counts[r] < 0) throw Napi::RangeError::New(v.Env(), std::string(name) + " has a negative count");
    displs[r] = static_cast<int>(total);
    total += static_cast<size_t>(counts[r]);
  }
  if (total > bufferBytes) throw Napi::RangeError::New(v.Env(), std::string(name) + " add up to more bytes than the buffer holds");
}

Napi::Value Init(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int inited = 0;
  MPI_Initialized(&inited);
  if (!inited) {
    // OpenMPI's components are plugins that resolve symbols of libmpi; node loads this addon with
    // RTLD_LOCAL, so libmpi must be made global first or the plugins fail to load.
    dlopen("libmpi.so.40", RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD);
    int provided = 0;
    Check(env, MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    g_comms.assign(1, MPI_COMM_WORLD);
  }
  int rank = 0, size = 0, len = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  char host[MPI_MAX_PROCESSOR_NAME];
  MPI_Get_processor_name(host, &len);
  auto out = Napi::Object::New(env);
  out.Set("rank", rank);
  out.Set("size", size);
  out.Set("host", std::string(host, len));
  return out;
}

Napi::Value Finalize(const Napi::CallbackInfo& info) {
  int inited = 0, finalized = 0;
  MPI_Initialized(&inited);
  MPI_Finalized(&finalized);
  if (inited && !finalized) {
    for (size_t i = 1; i < g_comms.size(); i++) MPI_Comm_free(&g_comms[i]);
    g_comms.clear();
    MPI_Finalize();
  }
  return info.Env().Undefined();
}

// abort(code): end every rank (a failure on one rank must not leave the others waiting in a collective)
Napi::Value Abort(const Napi::CallbackInfo& info) {
  MPI_Abort(MPI_COMM_WORLD, info[0].As<Napi::Number>().Int32Value());
  return info.Env().Undefined();
}

// split(comm, color, key) -> new communicator index; color < 0 = this rank joins none (returns -1)
Napi::Value Split(const Napi::CallbackInfo& info) {
  MPI_Comm parent = CommArg(info[0]);
  int color = info[1].As<Napi::Number>().Int32Value();
  int key = info[2].As<Napi::Number>().Int32Value();
  MPI_Comm c;
  Check(info.Env(), MPI_Comm_split(parent, color < 0 ? MPI_UNDEFINED : color, key, &c), "MPI_Comm_split");
  if (c == MPI_COMM_NULL) return Napi::Number::New(info.Env(), -1);
  MPI_Comm_set_errhandler(c, MPI_ERRORS_RETURN);
  g_comms.push_back(c);
  return Napi::Number::New(info.Env(), static_cast<double>(g_comms.size() - 1));
}

Napi::Value CommInfo(const Napi::CallbackInfo& info) {
  MPI_Comm c = CommArg(info[0]);
  int rank = 0;
  MPI_Comm_rank(c, &rank);
  auto out = Napi::Object::New(info.Env());
  out.Set("rank", rank);
  out.Set("size", CommSize(c));
  return out;
}

Napi::Value Barrier(const Napi::CallbackInfo& info) {
  Check(info.Env(), MPI_Barrier(CommArg(info[0])), "MPI_Barrier");
  return info.Env().Undefined();
}

// The arguments of an all-to-all-v: (comm, send, sendBytes[n], recv, recvBytes[n]), contiguous blocks
// per peer in rank order; counts and displacements are checked against the buffers.
struct AllToAllArgs {
  MPI_Comm comm;
  int n;
  Bytes send, recv;
  std::vector<int> sc, sd, rc, rd;
  explicit AllToAllArgs(const Napi::CallbackInfo& info)
      : comm(CommArg(info[0])), n(CommSize(comm)), send(BytesArg(info[1], "send")), recv(BytesArg(info[3], "recv")) {
    CountsArg(info[2], n, send.length, "send counts", sc, sd);
    CountsArg(info[4], n, recv.length, "receive counts", rc, rd);
  }
};

Napi::Value AllToAllV(const Napi::CallbackInfo& info) {
  AllToAllArgs a(info);
  Check(info.Env(), MPI_Alltoallv(a.send.data, a.sc.data(), a.sd.data(), MPI_BYTE, a.recv.data, a.rc.data(), a.rd.data(), MPI_BYTE, a.comm), "MPI_Alltoallv");
  return info.Env().Undefined();
}

// iAllToAllV(...same...) -> request id, completed by wait(id)
Napi::Value IAllToAllV(const Napi::CallbackInfo& info) {
  AllToAllArgs a(info);
  size_t id = 0;
  while (id < g_pending.size() && g_pending[id].used) id++;
  if (id == g_pending.size()) g_pending.emplace_back();
  Pending& p = g_pending[id];
  p.used = true;
  p.counts.clear();
  for (auto* v : {&a.sc, &a.sd, &a.rc, &a.rd}) p.counts.insert(p.counts.end(), v->begin(), v->end());
  p.pinned.clear();
  p.pinned.push_back(Napi::Persistent(info[1]));
  p.pinned.push_back(Napi::Persistent(info[3]));
  int* k = p.counts.data();
  int n = a.n;
  int rcode = MPI_Ialltoallv(a.send.data, k, k + n, MPI_BYTE, a.recv.data, k + 2 * n, k + 3 * n, MPI_BYTE, a.comm, &p.request);
  if (rcode != MPI_SUCCESS) {
    p.used = false;
    p.pinned.clear();
    Check(info.Env(), rcode, "MPI_Ialltoallv");
  }
  return Napi::Number::New(info.Env(), static_cast<double>(id));
}

Napi::Value Wait(const Napi::CallbackInfo& info) {
  uint32_t id = info[0].As<Napi::Number>().Uint32Value();
  if (id >= g_pending.size() || !g_pending[id].used) throw Napi::Error::New(info.Env(), "wait: no pending request " + std::to_string(id));
  Pending& p = g_pending[id];
  int rc = MPI_Wait(&p.request, MPI_STATUS_IGNORE);
  p.used = false;
  p.pinned.clear();
  Check(info.Env(), rc, "MPI_Wait");
  return info.Env().Undefined();
}

// allGatherV(comm, send, recv, recvBytes[n])
Napi::Value AllGatherV(const Napi::CallbackInfo& info) {
  MPI_Comm c = CommArg(info[0]);
  int n = CommSize(c);
  Bytes send = BytesArg(info[1], "send"), recv = BytesArg(info[2], "recv");
  std::vector<int> rc, rd;
  CountsArg(info[3], n, recv.length, "receive counts", rc, rd);
  int rank = 0;
  MPI_Comm_rank(c, &rank);
  if (static_cast<size_t>(rc[rank]) > send.length) throw Napi::RangeError::New(info.Env(), "allGatherV: this rank's count exceeds its send buffer");
  Check(info.Env(), MPI_Allgatherv(send.data, rc[rank], MPI_BYTE, recv.data, rc.data(), rd.data(), MPI_BYTE, c), "MPI_Allgatherv");
  return info.Env().Undefined();
}

// reduceScatter(comm, send Float32Array, recv Float32Array, recvCounts Int32Array[n] in floats): sum
Napi::Value ReduceScatter(const Napi::CallbackInfo& info) {
  MPI_Comm c = CommArg(info[0]);
  int n = CommSize(c);
  auto send = info[1].As<Napi::Float32Array>();
  auto recv = info[2].As<Napi::Float32Array>();
  std::vector<int> rc, rd;
  CountsArg(info[3], n, send.ElementLength(), "receive counts", rc, rd);
  int rank = 0;
  MPI_Comm_rank(c, &rank);
  if (static_cast<size_t>(rc[rank]) > recv.ElementLength()) throw Napi::RangeError::New(info.Env(), "reduceScatter: receive buffer too small");
  Check(info.Env(), MPI_Reduce_scatter(send.Data(), recv.Data(), rc.data(), MPI_FLOAT, MPI_SUM, c), "MPI_Reduce_scatter");
  return info.Env().Undefined();
}

// allReduce(comm, buf Float64Array, op 'sum'|'max'|'min'): in place
Napi::Value AllReduce(const Napi::CallbackInfo& info) {
  MPI_Comm c = CommArg(info[0]);
  auto buf = info[1].As<Napi::Float64Array>();
  std::string op = info[2].As<Napi::String>().Utf8Value();
  MPI_Op o = op == "max" ? MPI_MAX : op == "min" ? MPI_MIN : MPI_SUM;
  Check(info.Env(), MPI_Allreduce(MPI_IN_PLACE, buf.Data(), static_cast<int>(buf.ElementLength()), MPI_DOUBLE, o, c), "MPI_Allreduce");
  return info.Env().Undefined();
}

Napi::Object Register(Napi::Env env, Napi::Object exports) {
  exports.Set("init", Napi::Function::New(env, Init));
  exports.Set("finalize", Napi::Function::New(env, Finalize));
  exports.Set("abort", Napi::Function::New(env, Abort));
  exports.Set("split", Napi::Function::New(env, Split));
  exports.Set("commInfo", Napi::Function::New(env, CommInfo));
  exports.Set("barrier", Napi::Function::New(env, Barrier));
  exports.Set("allToAllV", Napi::Function::New(env, AllToAllV));
  exports.Set("iAllToAllV", Napi::Function::New(env, IAllToAllV));
  exports.Set("wait", Napi::Function::New(env, Wait));
  exports.Set("allGatherV", Napi::Function::New(env, AllGatherV));
  exports.Set("reduceScatter", Napi::Function::New(env, ReduceScatter));
  exports.Set("allReduce", Napi::Function::New(env, AllReduce));
  return exports;
}

}  // namespace

NODE_API_MODULE(moesaic_mpi, Register)
