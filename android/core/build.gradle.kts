// The Rust core for Android: the .so files from `./build-rust.sh` (src/main/jniLibs) and the
// Kotlin UniFFI generates from them (src/main/kotlin, generated, not committed).
plugins {
    id("com.android.library")
    id("org.jetbrains.kotlin.android")
}

android {
    namespace = "org.nostr.spaces.core"
    compileSdk = 35
    defaultConfig {
        minSdk = 26
        consumerProguardFiles("consumer-rules.pro")
    }
    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
    kotlinOptions { jvmTarget = "17" }
}

dependencies {
    // The `@aar` JNA carries libjnidispatch for every Android ABI.
    implementation("net.java.dev.jna:jna:5.18.1@aar")
    implementation("org.jetbrains.kotlinx:kotlinx-coroutines-android:1.10.2")
    // The bindings generated with android_cleaner import androidx.annotation.RequiresApi.
    implementation("androidx.annotation:annotation:1.9.1")
}
