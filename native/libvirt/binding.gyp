{
  "targets": [
    {
      "target_name": "vagoth_libvirt",
      "sources": [
        "src/addon.cc",
        "src/task.cc",
        "src/connection.cc",
        "src/domain.cc",
        "src/storage.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "<!@(pkg-config --cflags libvirt)"],
      "libraries": ["<!@(pkg-config --libs libvirt)"]
    }
  ]
}
