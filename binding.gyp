{
  # The native kernels (docs/kernels.md). The kernel source native/kernels-impl.h is compiled three
  # times, once per instruction set, each in its own static library because gyp has no per-file
  # flags; native/dispatch.cc picks one at run time with __builtin_cpu_supports.
  'variables': {
    'moesaic_kernel_cflags': ['-O3', '-fPIC', '-fno-exceptions', '-fno-rtti'],
    # MPI (docs/parallel.md) is optional: the moesaic_mpi addon is built only where mpicc exists
    'moesaic_has_mpi': '<!(command -v mpicc >/dev/null 2>&1 && echo 1 || echo 0)',
    # The bf16 matmul precision mode's vdpbf16ps kernel needs a compiler and assembler that know AVX-512
    # BF16; without them the mode runs its portable fallback (dispatch.cc)
    'moesaic_has_bf16dot': '<!(printf "#include <immintrin.h>\\n__m512 f(__m512 a, __m512bh b) { return _mm512_dpbf16_ps(a, b, b); }\\n" | ${CXX:-c++} -mavx512f -mavx512bf16 -x c++ -c - -o /dev/null >/dev/null 2>&1 && echo 1 || echo 0)',
  },
  'conditions': [
    ['moesaic_has_bf16dot==1', {
      'targets': [{
        # the bf16 precision mode's vdpbf16ps kernel: only dispatched to on CPUs reporting AVX-512 BF16
        'target_name': 'moesaic_kernels_bf16dot',
        'type': 'static_library',
        'sources': ['native/kernels-bf16dot.cc'],
        'cflags_cc': ['<@(moesaic_kernel_cflags)', '-mavx512f', '-mavx512bw', '-mavx512vl', '-mavx512bf16', '-mf16c'],
        'defines': ['MOESAIC_X86'],
      }],
    }],
    ['moesaic_has_mpi==1', {
      'targets': [{
        'target_name': 'moesaic_mpi',
        'sources': ['native/mpi.cc'],
        'include_dirs': ["<!(node -p \"require('node-addon-api').include_dir\")", '<!@(mpicc -showme:incdirs)'],
        'defines': ['NAPI_VERSION=8', 'NAPI_CPP_EXCEPTIONS', 'OMPI_SKIP_MPICXX=1'],
        'cflags!': ['-fno-exceptions'],
        'cflags_cc!': ['-fno-exceptions'],
        'cflags_cc': ['-O2', '-fexceptions'],
        'libraries': ['<!@(mpicc -showme:link)', '-ldl'],
      }],
    }],
  ],
  'targets': [
    {
      'target_name': 'moesaic_kernels_portable',
      'type': 'static_library',
      'sources': ['native/kernels-portable.cc', 'native/quant-portable.cc'],
      'cflags_cc': ['<@(moesaic_kernel_cflags)'],
      'conditions': [["target_arch=='x64'", {'defines': ['MOESAIC_X86']}]],
    },
    {
      'target_name': 'moesaic_kernels_avx2',
      'type': 'static_library',
      'sources': ['native/kernels-avx2.cc', 'native/quant-avx2.cc'],
      'cflags_cc': ['<@(moesaic_kernel_cflags)', '-mavx2', '-mfma', '-mf16c'],
      'defines': ['MOESAIC_X86'],
    },
    {
      'target_name': 'moesaic_kernels_avx512',
      'type': 'static_library',
      'sources': ['native/kernels-avx512.cc'],
      'cflags_cc': [
        '<@(moesaic_kernel_cflags)',
        '-mavx512f', '-mavx512bw', '-mavx512vl', '-mavx512dq', '-mavx2', '-mfma', '-mf16c',
        '-mprefer-vector-width=512',
      ],
      'defines': ['MOESAIC_X86'],
    },
    {
      # the quantized products' vpdpbusd path: only dispatched to on CPUs reporting AVX-512 VNNI
      'target_name': 'moesaic_kernels_avx512vnni',
      'type': 'static_library',
      'sources': ['native/quant-avx512.cc'],
      'cflags_cc': [
        '<@(moesaic_kernel_cflags)',
        '-mavx512f', '-mavx512bw', '-mavx512vl', '-mavx512dq', '-mavx512vnni', '-mavx2', '-mfma', '-mf16c',
        '-mprefer-vector-width=512',
      ],
      'defines': ['MOESAIC_X86'],
    },
    {
      'target_name': 'moesaic_native',
      'sources': [
        'native/binding.cc',
        'native/decode-binding.cc',
        'native/decode-layer.cc',
        'native/dispatch.cc',
        'native/experts.cc',
        'native/expert-io.cc',
        'native/mapfile.cc',
        'native/pool.cc',
        'native/quant-dispatch.cc',
        'native/quant-quantize.cc',
      ],
      'include_dirs': ["<!(node -p \"require('node-addon-api').include_dir\")"],
      'defines': ['NAPI_VERSION=8', 'NAPI_CPP_EXCEPTIONS'],
      'cflags!': ['-fno-exceptions'],
      'cflags_cc!': ['-fno-exceptions'],
      'cflags_cc': ['-O3', '-fexceptions'],
      'dependencies': ['moesaic_kernels_portable'],
      'conditions': [
        ["target_arch=='x64'", {
          'defines': ['MOESAIC_X86'],
          'dependencies': ['moesaic_kernels_avx2', 'moesaic_kernels_avx512', 'moesaic_kernels_avx512vnni'],
        }],
        ['moesaic_has_bf16dot==1', {
          'defines': ['MOESAIC_BF16DOT'],
          'dependencies': ['moesaic_kernels_bf16dot'],
        }],
      ],
    },
  ],
}
