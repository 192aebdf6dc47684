/** Python tracebacks vLLM prints when start-up fails, used by fault injection and config validation. */
export function traceback(frames: string[], last: string): string {
  return ['Traceback (most recent call last):', ...frames, last].join('\n');
}

const ENGINE_FRAMES = [
  '  File "/usr/local/lib/python3.12/dist-packages/vllm/v1/engine/core.py", line 699, in run_engine_core',
  '    raise e',
  '  File "/usr/local/lib/python3.12/dist-packages/vllm/v1/engine/core.py", line 686, in run_engine_core',
  '    engine_core = EngineCoreProc(*args, **kwargs)',
  '                  ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^',
];

export function cudaOomMessage(): string {
  return (
    'torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.16 GiB. GPU 0 has a total capacity of 79.19 GiB ' +
    'of which 412.06 MiB is free. Process 4242 has 78.78 GiB memory in use. Of the allocated memory 76.31 GiB is ' +
    'allocated by PyTorch, and 1.02 GiB is reserved by PyTorch but unallocated. If reserved but unallocated memory is ' +
    'large try setting PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True to avoid fragmentation.  See documentation ' +
    'for Memory Management  (https://pytorch.org/docs/stable/notes/cuda.html#environment-variables)'
  );
}

export function modelNotFoundMessage(model: string): string {
  return (
    `ValueError: Invalid repository ID or local directory specified: '${model}'.\n` +
    'Please verify the following requirements:\n' +
    '1. Provide a valid Hugging Face repository ID.\n' +
    '2. Specify a local directory that contains a recognized configuration file.\n' +
    "   - For Hugging Face models: ensure the presence of a 'config.json'.\n" +
    "   - For Mistral models: ensure the presence of a 'params.json'."
  );
}

/** The EngineCore traceback for an exception raised while the engine initialises. */
export function engineCoreFailure(lastLine: string): string {
  return traceback(ENGINE_FRAMES, lastLine);
}

export const ENGINE_INIT_FAILED =
  "RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {'EngineCore_DP0': 1}";

export function addressInUse(): string {
  return traceback(
    [
      '  File "/usr/local/bin/vllm", line 10, in <module>',
      '    sys.exit(main())',
      '  File "/usr/local/lib/python3.12/dist-packages/vllm/entrypoints/openai/api_server.py", line 1850, in run_server',
      '    listen_address, sock = setup_server(args)',
      '  File "/usr/local/lib/python3.12/dist-packages/vllm/entrypoints/openai/api_server.py", line 1810, in create_server_socket',
      '    sock.bind(addr)',
    ],
    'OSError: [Errno 98] Address already in use',
  );
}
