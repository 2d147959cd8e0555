start();
reportReloadTiming();
